"""Live containment against real things on this host: a loopback HTTP NAC API, nftables, a real slapd.

Dry-run stays the default (the NAC server sees no call); with an adapter in ``containment_live`` an
approved plan runs once (approving again runs nothing twice), is recorded with input, output and actor,
and a rollback undoes it. Patient-connected assets wait for a person even when the playbook says auto.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from healthsec.config import ConfigError, load_settings
from healthsec.model import Alert, Asset, Entity, EntityKind, EntityRole, Incident, Severity
from healthsec.model.assets import Criticality
from healthsec.respond.containment import ContainmentConfig
from healthsec.respond.playbook import load_text
from healthsec.services.cases import CaseService, ResponseConfig
from healthsec.services.containment import decide, rollback
from healthsec.services.playbooks import PlaybookEngine
from healthsec.store import Store

T0 = datetime(2027, 3, 3, 19, 0, tzinfo=UTC)
TOKEN = "nac-token-for-tests-only"
BOOK = """
name: live_test
version: 1
trigger:
  event: incident
  tactics: [collection]
steps:
  - kind: open_case
  - kind: contain
    action: isolate_host
    target: actor_host
    approval: auto
  - kind: contain
    action: isolate_host
    target: device
    approval: auto
  - kind: contain
    action: disable_account
    target: actor_account
  - kind: contain
    action: block_address
    target: external_ip
"""


class NAC:
    """A loopback NAC API that keeps its quarantine list and records every call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.quarantined: set[str] = set()
        self.fail_next = 0
        nac = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> dict[str, Any]:
                n = int(self.headers.get("Content-Length") or 0)
                call = {
                    "method": self.command,
                    "path": self.path,
                    "body": json.loads(self.rfile.read(n)) if n else None,
                    "auth": self.headers.get("Authorization"),
                    "key": self.headers.get("Idempotency-Key"),
                }
                nac.calls.append(call)
                return call

            def do_POST(self) -> None:
                call = self._record()
                if nac.fail_next:
                    nac.fail_next -= 1
                    return self._answer(503, {"error": "busy"})
                nac.quarantined.add(call["body"]["host"])
                self._answer(200, {"quarantined": call["body"]["host"]})

            def do_DELETE(self) -> None:
                host = self._record()["path"].rsplit("/", 1)[-1]
                if host not in nac.quarantined:
                    return self._answer(404, {"error": "not quarantined"})
                nac.quarantined.discard(host)
                self._answer(200, {"released": host})

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def nac() -> Iterator[NAC]:
    server = NAC()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _store(tmp_path: Path, name: str = "live.db") -> Store:
    store = Store.open(str(tmp_path / name), "north")
    store.assets.upsert_many(
        [
            Asset(id="ws-011", name="ws-011", role="workstation", zone="clinical"),
            Asset(
                id="pump-13",
                name="pump-13",
                role="infusion_pump",
                zone="devices",
                criticality=Criticality.LIFE_SUSTAINING,
            ),
        ]
    )
    ents = (
        Entity(EntityKind.USER, "n011"),
        Entity(EntityKind.HOST, "ws-011"),
        Entity(EntityKind.IP, "203.0.113.9"),
        Entity(EntityKind.DEVICE, "pump-13", EntityRole.TARGET),
    )
    alert = Alert(
        id="al-1",
        ts=T0,
        detector="clinical.access.care-relationship",
        detector_version="1",
        title="reads",
        score=0.9,
        severity=Severity.HIGH,
        explanation="x",
        entities=ents,
        tactics=("collection",),
    )
    store.alerts.add_many([alert])
    store.incidents.upsert_many(
        [
            Incident(
                id="inc-1",
                title="reads",
                first_seen=T0,
                last_seen=T0,
                severity=Severity.HIGH,
                score=0.9,
                alert_ids=("al-1",),
                entities=ents,
                tactics=("collection",),
            )
        ]
    )
    return store


def _run(store: Store, **settings: Any) -> tuple[CaseService, dict[str, dict[str, Any]]]:
    """Run the test playbook with these settings; the containment requests by (action, target)."""
    conf = load_settings(org="north", **settings)
    svc = CaseService(store, ResponseConfig.from_settings(conf, "north"))
    inc = store.incidents.get("inc-1")
    assert inc is not None
    engine = PlaybookEngine(svc, [load_text(BOOK)], containment=ContainmentConfig.from_settings(conf))
    (run,) = engine.on_incidents([inc])
    assert run["status"] == "done", run
    case = svc.show(run["case_id"])
    return svc, {(c["action"], c["target"]): c for c in case["containment"]}


def test_dry_run_is_the_default_and_calls_nothing(tmp_path: Path, nac: NAC) -> None:
    svc, reqs = _run(_store(tmp_path), containment_nac_url=nac.url)
    ws = reqs[("isolate_host", "ws-011")]
    assert ws["status"] == "approved" and ws["executed"] is not True  # auto, but dry-run: only recorded
    body = decide(svc, reqs[("disable_account", "n011")]["id"], "dpo-anna", approve=True)
    assert body["result"].startswith("dry-run") and body["executed"] is False
    assert nac.calls == []


def test_live_http_runs_once_records_and_rolls_back(tmp_path: Path, nac: NAC) -> None:
    token = tmp_path / "nac.token"
    token.write_text(TOKEN + "\n")
    svc, reqs = _run(
        _store(tmp_path),
        containment_nac_url=nac.url,
        containment_live=["nac-http"],
        containment_http_token_file=str(token),
    )
    # auto on a workstation: run by the playbook; auto on a life-sustaining pump: waits for a person
    ws, pump = reqs[("isolate_host", "ws-011")], reqs[("isolate_host", "pump-13")]
    assert ws["executed"] is True and ws["execution"]["actor"] == "playbook:live_test"
    assert pump["status"] == "awaiting_approval" and "patient-connected" in pump["approval_reason"]
    assert nac.quarantined == {"ws-011"}
    assert nac.calls == [
        {
            "method": "POST",
            "path": "/api/quarantine",
            "body": {"host": "ws-011", "profile": "isolate"},
            "auth": f"Bearer {TOKEN}",
            "key": ws["id"],
        }
    ]
    assert ws["execution"]["status"] == 200 and ws["execution"]["input"]["url"] == f"{nac.url}/quarantine"
    assert TOKEN not in json.dumps(
        svc.show(svc.repo.entry(ws["id"])["case_id"])
    )  # the secret is never stored

    approved = decide(svc, pump["id"], "dr-house", approve=True)
    assert approved["executed"] is True and approved["execution"]["actor"] == "dr-house"
    again = decide(svc, pump["id"], "dr-house", approve=True)  # idempotent: nothing runs twice
    assert again["execution"] == approved["execution"]
    assert [c["body"]["host"] for c in nac.calls if c["method"] == "POST"] == ["ws-011", "pump-13"]

    undone = rollback(svc, pump["id"], "dr-house", "pump checked")
    assert undone["status"] == "rolled_back" and undone["rollback_execution"]["status"] == 200
    assert nac.calls[-1]["method"] == "DELETE" and nac.calls[-1]["path"] == "/api/quarantine/pump-13"
    assert nac.quarantined == {"ws-011"}
    nac.quarantined.clear()  # released by hand at the NAC: the rollback still completes (404 = already done)
    assert rollback(svc, ws["id"], "soc", "done")["rollback_execution"]["output"] == "already absent"
    events = [t["action"] for t in svc.show(svc.repo.entry(ws["id"])["case_id"])["timeline"]]
    assert events.count("containment.executed") == 2 and events.count("containment.rolled_back") == 2


def test_a_failing_adapter_is_recorded_and_approving_again_retries(tmp_path: Path, nac: NAC) -> None:
    nac.fail_next = 1
    svc, reqs = _run(_store(tmp_path), containment_nac_url=nac.url, containment_live=["nac-http"])
    ws = reqs[("isolate_host", "ws-011")]
    assert ws["status"] == "approved" and ws["executed"] is False
    assert "answered 503" in ws["execution_error"]
    body = decide(svc, ws["id"], "soc-ben", approve=True)
    assert body["executed"] is True and "execution_error" not in body
    assert nac.quarantined == {"ws-011"} and len(nac.calls) == 2


def test_live_adapter_without_its_address_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="containment_live nac-http needs containment_nac_url"):
        load_settings(containment_live=["nac-http"])
    with pytest.raises(ConfigError, match="containment_ldap_password_file"):
        load_settings(
            containment_live=["ldap"],
            containment_ldap_url="ldap://127.0.0.1:389",
            containment_ldap_base_dn="ou=staff,dc=x",
            containment_ldap_bind_dn="cn=admin,dc=x",
        )
    with pytest.raises(ConfigError, match="must be ldaps://"):
        load_settings(containment_ldap_url="ldap://dc1.hospital.example")
    with pytest.raises(ConfigError, match="containment_nft_table"):
        load_settings(containment_nft_table="inet x; flush ruleset")


def _nft_usable() -> bool:
    if shutil.which("nft") is None or os.geteuid() != 0:
        return False
    return subprocess.run(["nft", "list", "tables"], capture_output=True).returncode == 0


def test_live_nftables_in_a_throwaway_table(tmp_path: Path) -> None:
    assert _nft_usable(), "needs the nft command and root (.ci/run installs nftables)"
    table = f"hs_test_{uuid.uuid4().hex[:8]}"
    try:
        svc, reqs = _run(
            _store(tmp_path), containment_live=["nftables"], containment_nft_table=f"inet {table}"
        )
        block = reqs[("block_address", "203.0.113.9")]
        assert block["status"] == "awaiting_approval"
        body = decide(svc, block["id"], "soc-ben", approve=True)
        assert body["executed"] is True and body["execution"]["input"][0] == f"nft add table inet {table}"
        listed = subprocess.run(
            ["nft", "list", "set", "inet", table, "blocklist"], capture_output=True, text=True
        )
        assert "203.0.113.9" in listed.stdout
        undone = rollback(svc, block["id"], "soc-ben", "false positive")
        assert undone["status"] == "rolled_back" and undone["rollback_execution"]["output"] == "ok"
        listed = subprocess.run(
            ["nft", "list", "set", "inet", table, "blocklist"], capture_output=True, text=True
        )
        assert "203.0.113.9" not in listed.stdout
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True)


SLAPD_CONF = """include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile {dir}/slapd.pid
database mdb
suffix "dc=hospital,dc=example"
rootdn "cn=admin,dc=hospital,dc=example"
rootpw {password}
directory {dir}/db
overlay ppolicy
"""


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real OpenLDAP server on a free loopback port with one staff account, stopped by its pid."""
    binary = shutil.which("slapd") or ("/usr/sbin/slapd" if Path("/usr/sbin/slapd").exists() else None)
    if binary is None or not Path("/usr/lib/ldap").is_dir():
        pytest.fail("needs OpenLDAP's slapd (.ci/run installs slapd)")
    import ldap3

    d = tmp_path / "slapd"
    (d / "db").mkdir(parents=True)
    password = uuid.uuid4().hex
    (d / "slapd.conf").write_text(SLAPD_CONF.format(dir=d, password=password))
    pw_file = tmp_path / "ldap.password"
    pw_file.write_text(password)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"ldap://127.0.0.1:{port}"
    subprocess.run([binary, "-f", str(d / "slapd.conf"), "-h", f"{url}/"], check=True, timeout=30)
    try:
        for _ in range(50):
            try:
                conn = ldap3.Connection(url, "cn=admin,dc=hospital,dc=example", password, auto_bind=True)
                break
            except ldap3.core.exceptions.LDAPException:
                time.sleep(0.1)
        else:
            pytest.fail("slapd did not answer")
        conn.add("dc=hospital,dc=example", ["dcObject", "organization"], {"o": "hospital", "dc": "hospital"})
        conn.add("ou=staff,dc=hospital,dc=example", ["organizationalUnit"], {"ou": "staff"})
        conn.add("uid=n011,ou=staff,dc=hospital,dc=example", ["inetOrgPerson"], {"cn": "n011", "sn": "n011"})
        assert conn.result["result"] == 0, conn.result
        conn.unbind()
        yield url, pw_file
    finally:
        pid = int((d / "slapd.pid").read_text()) if (d / "slapd.pid").exists() else None
        if pid:
            os.kill(pid, 15)


def _locked(url: str, pw_file: Path) -> list[Any]:
    import ldap3

    with ldap3.Connection(url, "cn=admin,dc=hospital,dc=example", pw_file.read_text(), auto_bind=True) as c:
        c.search(
            "uid=n011,ou=staff,dc=hospital,dc=example", "(objectClass=*)", attributes=["pwdAccountLockedTime"]
        )
        return list(c.entries[0].entry_attributes_as_dict.get("pwdAccountLockedTime", []))


def test_live_ldap_disables_and_reenables_an_account(tmp_path: Path, slapd: tuple[str, Path]) -> None:
    url, pw_file = slapd
    svc, reqs = _run(
        _store(tmp_path),
        containment_live=["ldap"],
        containment_ldap_url=url,
        containment_ldap_base_dn="ou=staff,dc=hospital,dc=example",
        containment_ldap_bind_dn="cn=admin,dc=hospital,dc=example",
        containment_ldap_password_file=str(pw_file),
    )
    req = reqs[("disable_account", "n011")]
    assert req["status"] == "awaiting_approval" and _locked(url, pw_file) == []
    body = decide(svc, req["id"], "dpo-anna", approve=True)
    assert body["executed"] is True and body["execution"]["output"] == "ok"
    assert body["execution"]["input"]["dn"] == "uid=n011,ou=staff,dc=hospital,dc=example"
    assert (
        len(_locked(url, pw_file)) == 1
    )  # pwdAccountLockedTime 000001010000Z: locked until an admin unlocks
    assert pw_file.read_text() not in json.dumps(body)
    undone = rollback(svc, req["id"], "dpo-anna", "HR cleared the access")
    assert undone["status"] == "rolled_back" and _locked(url, pw_file) == []


def test_the_demo_never_acts_live(tmp_path: Path, nac: NAC) -> None:
    from healthsec.demo import dry_run_playbooks
    from healthsec.services.playbooks import on_incidents

    books = tmp_path / "books"
    books.mkdir()
    (books / "live_test.yaml").write_text(BOOK)
    live = load_settings(
        org="north", playbook_dirs=[str(books)], containment_live=["nac-http"], containment_nac_url=nac.url
    )
    store = _store(tmp_path)
    inc = store.incidents.get("inc-1")
    assert inc is not None
    dry_run_playbooks(store, [inc], live, T0)
    assert nac.calls == []  # the demo's hook: the auto isolation stays a recorded plan
    store.close()
    store = _store(tmp_path, "service.db")  # the same incident in a fresh store: the service's hook acts
    on_incidents(store, [inc], live, T0)
    assert [c["body"]["host"] for c in nac.calls] == ["ws-011"]
    store.close()
