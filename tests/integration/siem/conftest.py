"""Real local receivers for the SIEM output tests: syslog over UDP/TCP/TLS, an HTTP `_bulk` and HEC server."""

from __future__ import annotations

import datetime as dt
import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


def self_signed(tmp: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for ``host`` (as an IP SAN) and its key, made with cryptography in the test."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "syslog-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class SyslogReceiver:
    """Collects syslog messages: UDP datagrams, or TCP/TLS with RFC 6587 octet counting."""

    def __init__(self, protocol: str, cert: tuple[Path, Path] | None = None) -> None:
        self.protocol = protocol
        self.messages: list[str] = []
        self.got = threading.Event()
        outer = self

        if protocol == "udp":

            class UdpHandler(socketserver.BaseRequestHandler):
                def handle(self) -> None:
                    outer._add(self.request[0])

            self.server: Any = socketserver.ThreadingUDPServer(("127.0.0.1", 0), UdpHandler)
        else:
            ctx = None
            if protocol == "tls":
                assert cert is not None
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(str(cert[0]), str(cert[1]))

            class TcpHandler(socketserver.BaseRequestHandler):
                def handle(self) -> None:
                    conn = self.request
                    if ctx is not None:
                        conn = ctx.wrap_socket(conn, server_side=True)
                    buf = b""
                    while True:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buf += chunk
                        while b" " in buf:
                            size, _, rest = buf.partition(b" ")
                            n = int(size)
                            if len(rest) < n:
                                break
                            outer._add(rest[:n])
                            buf = rest[n:]

            socketserver.ThreadingTCPServer.allow_reuse_address = True
            self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), TcpHandler)
            self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _add(self, data: bytes) -> None:
        self.messages.append(data.decode("utf-8"))
        self.got.set()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HttpReceiver:
    """Speaks Elasticsearch ``_bulk`` (NDJSON, per-item results) and Splunk HEC (token checked)."""

    def __init__(self, hec_token: str = "hec-test-token") -> None:
        self.bulk: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.hec: list[dict[str, Any]] = []
        self.seen_ids: set[str] = set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path == "/_bulk":
                    assert self.headers["Content-Type"] == "application/x-ndjson"
                    lines = [json.loads(x) for x in body.decode().splitlines() if x]
                    items = []
                    for action, doc in zip(lines[::2], lines[1::2], strict=True):
                        _id = action["create"]["_id"]
                        status = 409 if _id in outer.seen_ids else 201
                        outer.seen_ids.add(_id)
                        outer.bulk.append((action, doc))
                        items.append({"create": {"_id": _id, "status": status}})
                    self._answer(
                        200, {"errors": any(i["create"]["status"] > 299 for i in items), "items": items}
                    )
                elif self.path == "/services/collector/event":
                    if self.headers.get("Authorization") != f"Splunk {hec_token}":
                        self._answer(401, {"text": "Invalid token", "code": 4})
                        return
                    outer.hec.append(json.loads(body))
                    self._answer(200, {"text": "Success", "code": 0})
                else:
                    self._answer(404, {})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    yield r
    r.close()


@pytest.fixture
def syslog_receivers(tmp_path: Path) -> Iterator[dict[str, SyslogReceiver]]:
    cert = self_signed(tmp_path)
    rs = {p: SyslogReceiver(p, cert) for p in ("udp", "tcp", "tls")}
    rs["tls"].cert = cert[0]  # type: ignore[attr-defined]
    yield rs
    for r in rs.values():
        r.close()
