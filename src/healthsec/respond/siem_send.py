"""SIEM senders for the outbox: syslog over UDP/TCP/TLS, Elasticsearch/OpenSearch ``_bulk``, Splunk HEC, HTTP.

Each sender takes one finding (as :mod:`healthsec.respond.siem` reads it), writes it in its destination's
format and raises :class:`~healthsec.respond.notify.DeliveryError` when the destination did not take it;
the outbox dispatcher then retries with backoff and finally dead-letters the message. Errors name the
destination and the reason, never the record's content.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from healthsec.respond import siem
from healthsec.respond.notify import DeliveryError

Transport = Literal["syslog", "elastic", "hec", "http"]
UDP_MAX = 65_000  # one datagram; longer records are cut at a character boundary (RFC 5426 allows it)


def _tls_context(ca_file: Path | None, verify: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if not verify:  # only for a receiver named in the settings with tls_verify = false
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _render(dest: str, fmt: str, finding: Mapping[str, Any]) -> str:
    try:
        return siem.render(finding, fmt)
    except siem.FormatError as exc:  # a record that cannot be written will never be: let it die quickly
        raise DeliveryError(f"{dest}: {exc}") from None


@dataclass
class SyslogSender:
    """RFC 5424 over UDP (RFC 5426), TCP (RFC 6587 octet counting) or TLS (RFC 5425)."""

    name: str
    host: str
    port: int
    protocol: Literal["udp", "tcp", "tls"] = "tls"
    fmt: str = "cef"
    ca_file: Path | None = None
    tls_verify: bool = True
    timeout: float = 10.0
    hostname: str = field(default_factory=socket.gethostname)
    _sock: Any = field(default=None, init=False, repr=False)

    def frame(self, finding: Mapping[str, Any]) -> bytes:
        body = _render(self.name, self.fmt, finding)
        msg = siem.to_rfc5424(finding, body, hostname=self.hostname).encode("utf-8")
        if self.protocol == "udp":
            return msg[:UDP_MAX].decode("utf-8", "ignore").encode("utf-8")
        return str(len(msg)).encode() + b" " + msg

    def send(self, message: Mapping[str, Any]) -> None:
        data = self.frame(message)
        try:
            if self.protocol == "udp":
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.sendto(data, (self.host, self.port))
                return
            if self._sock is None:
                self._sock = self._connect()
            try:
                self._sock.sendall(data)
            except OSError:  # the receiver dropped a kept connection: one fresh attempt
                self.close()
                self._sock = self._connect()
                self._sock.sendall(data)
        except OSError as exc:
            self.close()
            raise DeliveryError(f"{self.name}: syslog {self.protocol}: {type(exc).__name__}") from None

    def _connect(self) -> Any:
        raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
        if self.protocol == "tls":
            try:
                return _tls_context(self.ca_file, self.tls_verify).wrap_socket(raw, server_hostname=self.host)
            except (OSError, ssl.SSLError):
                raw.close()
                raise
        return raw

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


@dataclass
class HttpSender:
    """Elasticsearch/OpenSearch ``_bulk`` (one create per finding), Splunk HEC, or a JSON POST."""

    name: str
    url: str
    transport: Literal["elastic", "hec", "http"] = "elastic"
    fmt: str = "ecs"
    index: str | None = None
    token: str | None = None
    ca_file: Path | None = None
    tls_verify: bool = True
    timeout: float = 10.0

    def request(self, finding: Mapping[str, Any]) -> tuple[str, bytes, dict[str, str]]:
        """The URL, body and headers for one finding (validated before anything is sent)."""
        try:
            if self.fmt == "cef":
                if self.transport != "hec":
                    raise siem.FormatError("CEF is a line format: send it over syslog or HEC")
                doc: Any = siem.to_cef(finding)
            else:
                doc = siem.document(finding, self.fmt)
        except siem.FormatError as exc:
            raise DeliveryError(f"{self.name}: {exc}") from None
        headers = {"Content-Type": "application/json"}
        base = self.url.rstrip("/")
        if self.transport == "elastic":
            action = {"create": {"_index": self.index or "healthsec-findings", "_id": finding["id"]}}
            body = orjson.dumps(action) + b"\n" + orjson.dumps(doc) + b"\n"
            headers["Content-Type"] = "application/x-ndjson"
            if self.token:
                headers["Authorization"] = f"ApiKey {self.token}"
            return base + "/_bulk", body, headers
        if self.transport == "hec":
            hec = siem.to_hec(finding, doc if isinstance(doc, dict) else None, index=self.index)
            if isinstance(doc, str):
                hec["event"] = doc
            try:
                siem.validate_hec(hec)
            except siem.FormatError as exc:
                raise DeliveryError(f"{self.name}: {exc}") from None
            if self.token:
                headers["Authorization"] = f"Splunk {self.token}"
            return base + "/services/collector/event", orjson.dumps(hec), headers
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return base, orjson.dumps(doc), headers

    def send(self, message: Mapping[str, Any]) -> None:
        import httpx

        url, body, headers = self.request(message)
        verify: Any = True
        if url.startswith("https"):
            verify = _tls_context(self.ca_file, self.tls_verify)
        try:
            resp = httpx.post(url, content=body, headers=headers, timeout=self.timeout, verify=verify)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.name}: {self.transport}: {type(exc).__name__}") from None
        if resp.status_code >= 300:
            raise DeliveryError(f"{self.name}: {self.transport}: HTTP {resp.status_code}")
        if self.transport == "elastic":
            self._bulk_result(resp)
        elif self.transport == "hec":
            code = _json(resp).get("code")
            if code not in (0, None):
                raise DeliveryError(f"{self.name}: hec: code {code}")

    def _bulk_result(self, resp: Any) -> None:
        """``_bulk`` answers 200 with per-item errors; a 409 (already indexed) counts as delivered."""
        result = _json(resp)
        if not result.get("errors"):
            return
        for item in result.get("items", []):
            status = next(iter(item.values()), {}).get("status", 0)
            if status >= 300 and status != 409:
                raise DeliveryError(f"{self.name}: elastic: item status {status}")


def _json(resp: Any) -> dict[str, Any]:
    try:
        out = resp.json()
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}
