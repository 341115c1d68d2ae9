"""Live containment: run an approved plan (or its rollback) through the adapter a site turned on.

Dry-run stays the default: only adapters named in ``containment_live`` act, and only on a plan a person
approved (or, for assets that are not patient-connected, a playbook's ``approval: auto``). Each run
executes exactly what the plan shows:

- ``nftables``: the plan's ``nft`` lines, fed as one atomic batch to ``nft -f -`` (argument list, no
  shell). ``add`` is idempotent; a rollback of an element already gone counts as done.
- ``ldap``: the plan's modify through ``ldap3`` (replace is idempotent; deleting an attribute already
  gone counts as done).
- ``nac-http`` / ``clinical-proxy-http``: the plan's HTTP call through ``httpx`` with the request id as
  ``Idempotency-Key``; a rollback answered 404 counts as done.

Secrets (bearer token, bind password) are read from their files at the moment of use and never
recorded: the returned record holds the input (the plan's lines or call) and the output (status, the
first 500 characters of what the other side answered).
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HTTP_ADAPTERS = frozenset({"nac-http", "clinical-proxy-http"})
_OUT = 500


class ExecutionFailed(RuntimeError):
    """The adapter did not do what the plan says; the message names the adapter and the reason."""


@dataclass(frozen=True)
class LiveConfig:
    """Which adapters act, and where their secrets are (paths only; read when used)."""

    adapters: frozenset[str] = frozenset()
    http_token_file: Path | None = None
    ldap_url: str | None = None
    ldap_bind_dn: str | None = None
    ldap_password_file: Path | None = None
    timeout_s: float = 10.0
    nft: str = "nft"

    @classmethod
    def from_settings(cls, settings: Any) -> LiveConfig:
        return cls(
            adapters=frozenset(settings.containment_live),
            http_token_file=settings.containment_http_token_file,
            ldap_url=settings.containment_ldap_url,
            ldap_bind_dn=settings.containment_ldap_bind_dn,
            ldap_password_file=settings.containment_ldap_password_file,
        )

    def is_live(self, adapter: str) -> bool:
        return adapter in self.adapters


def _secret(path: Path | None, key: str) -> str | None:
    from healthsec.config import read_secret_file

    return None if path is None else read_secret_file(path, key).decode("utf-8")


def execute(body: dict[str, Any], live: LiveConfig, request_id: str, *, undo: bool = False) -> dict[str, Any]:
    """Run the plan in ``body`` (a containment request), or its rollback; returns input and output."""
    adapter = body["adapter"]
    if not live.is_live(adapter):
        raise ExecutionFailed(f"{adapter}: not a live adapter here (containment_live)")
    if adapter == "nftables":
        return _nft(body["rollback"] if undo else body["commands"], live, undo)
    if adapter == "ldap":
        return _ldap(body, live, undo)
    if adapter in HTTP_ADAPTERS:
        return _http(body, live, request_id, undo)
    raise ExecutionFailed(f"{adapter}: no live executor")


def _nft(lines: list[str], live: LiveConfig, undo: bool) -> dict[str, Any]:
    binary = shutil.which(live.nft)
    if binary is None:
        raise ExecutionFailed("nftables: the nft command is not installed")
    if not all(line.startswith("nft ") and "\n" not in line for line in lines):
        raise ExecutionFailed("nftables: the plan holds a line that is not one nft command")
    script = "\n".join(line.removeprefix("nft ") for line in lines) + "\n"
    try:
        run = subprocess.run(  # noqa: S603 - argument list, fixed binary; the script comes from plan()
            [binary, "-f", "-"], input=script, capture_output=True, text=True, timeout=live.timeout_s
        )
    except subprocess.TimeoutExpired:
        raise ExecutionFailed(f"nftables: nft did not answer within {live.timeout_s:g} s") from None
    err = run.stderr.strip()
    if run.returncode != 0:
        if undo and "No such file or directory" in err:
            return {"input": lines, "output": "already absent", "returncode": run.returncode}
        raise ExecutionFailed(f"nftables: nft exited {run.returncode}: {err[:_OUT]}")
    return {"input": lines, "output": (run.stdout.strip() or "ok")[:_OUT], "returncode": 0}


def _ldap(body: dict[str, Any], live: LiveConfig, undo: bool) -> dict[str, Any]:
    import ldap3
    from ldap3.core.exceptions import LDAPException

    spec = body.get("ldap")
    if not spec:
        raise ExecutionFailed("ldap: the request was planned before live adapters; plan it again")
    changes = spec["rollback"] if undo else spec["modify"]
    ops = {"replace": ldap3.MODIFY_REPLACE, "delete": ldap3.MODIFY_DELETE, "add": ldap3.MODIFY_ADD}
    mods = {attr: [(ops[op], values)] for attr, (op, values) in changes.items()}
    password = _secret(live.ldap_password_file, "containment_ldap_password_file")
    record = {"input": {"dn": spec["dn"], "changes": changes}}
    try:
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED)  # ldap3's default would not check the certificate
        server = ldap3.Server(
            live.ldap_url or "", connect_timeout=int(live.timeout_s), get_info=ldap3.NONE, tls=tls
        )
        with ldap3.Connection(
            server,
            user=live.ldap_bind_dn,
            password=password,
            auto_bind=True,
            receive_timeout=int(live.timeout_s),
        ) as conn:
            conn.modify(spec["dn"], mods)
            result = dict(conn.result)
    except (LDAPException, OSError) as exc:
        raise ExecutionFailed(f"ldap: {type(exc).__name__}: {str(exc)[:_OUT]}") from None
    code, desc = result.get("result"), result.get("description")
    if code == 0:
        return {**record, "output": "ok"}
    if undo and desc == "noSuchAttribute":
        return {**record, "output": "already absent"}
    raise ExecutionFailed(f"ldap: modify {spec['dn']} answered {desc} ({code}): {result.get('message', '')}")


def _http(body: dict[str, Any], live: LiveConfig, request_id: str, undo: bool) -> dict[str, Any]:
    import httpx

    call = body.get("rollback_http") if undo else body.get("http")
    if not call:
        raise ExecutionFailed(
            f"{body['adapter']}: the request was planned before live adapters; plan it again"
        )
    if "<" in call["url"]:
        raise ExecutionFailed(
            f"{body['adapter']}: the plan addresses a placeholder ({call['url']}); plan it again"
        )
    headers = {"Idempotency-Key": f"{request_id}{':rollback' if undo else ''}"}
    token = _secret(live.http_token_file, "containment_http_token_file")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        resp = httpx.request(
            call["method"],
            call["url"],
            json=call["json"] or None,
            headers=headers,
            timeout=live.timeout_s,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        raise ExecutionFailed(
            f"{body['adapter']}: {call['method']} {call['url']}: {type(exc).__name__}"
        ) from None
    record = {"input": call, "status": resp.status_code, "output": resp.text[:_OUT]}
    if resp.is_success or (undo and resp.status_code == 404):
        return record if resp.is_success else {**record, "output": "already absent"}
    raise ExecutionFailed(f"{body['adapter']}: {call['method']} {call['url']} answered {resp.status_code}")
