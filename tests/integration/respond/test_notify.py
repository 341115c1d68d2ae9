"""Notifications end to end: a real SMTP server (aiosmtpd), a webhook receiver and apprise on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from healthsec.respond.notify import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AppriseSender,
    SmtpSender,
    WebhookSender,
    verify,
)
from healthsec.services.cases import CaseService, ResponseConfig
from healthsec.services.notify import dispatch, requeue
from healthsec.store import Store
from healthsec.store.cases import cases

pytestmark = pytest.mark.integration

SECRET = b"test-webhook-secret-0123456789"
NOW = datetime(2027, 3, 3, 12, 0, tzinfo=UTC)


class Receiver:
    """A webhook target: answers the queued status codes in turn (then 200), keeps what it got."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.got: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.got.append((dict(self.headers), body))
                code = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[bytes]]]:
    from aiosmtpd.controller import Controller

    got: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            got.append(envelope.content)
            return "250 OK"

    import socket

    with socket.socket() as probe:  # aiosmtpd checks readiness by connecting, so it needs a real port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield port, got
    finally:
        ctl.stop()


def _case_with_messages(tmp_path: Path, channels: tuple[str, ...]) -> Store:
    from healthsec.model import Alert, Entity, EntityKind, Incident, Severity

    store = Store.open(str(tmp_path / "n.db"))
    ents = (Entity(EntityKind.USER, "n011"), Entity(EntityKind.PATIENT, "MRN100111"))
    alert = Alert(
        id="al-1",
        ts=NOW,
        detector="clinical.access.care-relationship",
        detector_version="1",
        title="t",
        score=1.0,
        severity=Severity.HIGH,
        explanation="e",
        entities=ents,
    )
    store.alerts.add_many([alert])
    inc = Incident(
        id="inc-1",
        title="n011 read MRN100111",
        first_seen=NOW,
        last_seen=NOW,
        severity=Severity.HIGH,
        score=1.0,
        alert_ids=("al-1",),
        entities=ents,
    )
    store.incidents.upsert_many([inc])
    svc = CaseService(
        store, ResponseConfig(console_url="https://soc.example", channels=channels), lambda: NOW
    )
    svc.open(["inc-1"], "alice")
    return store


def test_webhook_is_signed_retried_with_backoff_and_delivered(tmp_path: Path, receiver: Receiver) -> None:
    store = _case_with_messages(tmp_path, ("webhook",))
    receiver.statuses = [503]
    senders = {"webhook": WebhookSender(receiver.url, SECRET)}
    assert dispatch(store, senders, now=NOW) == {"sent": 0, "retry": 1, "dead": 0}
    assert dispatch(store, senders, now=NOW + timedelta(seconds=10)) == {"sent": 0, "retry": 0, "dead": 0}
    assert dispatch(store, senders, now=NOW + timedelta(seconds=31)) == {"sent": 1, "retry": 0, "dead": 0}
    headers, body = receiver.got[-1]
    assert verify(SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    assert not verify(b"wrong", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    doc = json.loads(body)
    assert doc["event"] == "case.opened"
    assert doc["link"].startswith("https://soc.example/cases/case-")
    assert "MRN100111" not in body.decode()
    assert "n011" not in body.decode()
    (msg,) = cases(store).outbox()
    assert msg["status"] == "sent"
    assert msg["attempts"] == 2


def test_a_target_that_stays_down_keeps_the_message_until_dead_lettered(tmp_path: Path) -> None:
    store = _case_with_messages(tmp_path, ("webhook",))
    senders = {"webhook": WebhookSender("http://127.0.0.1:9/closed", SECRET, timeout=2)}
    when = NOW
    for _ in range(3):
        dispatch(store, senders, now=when, max_attempts=3)
        when += timedelta(hours=2)
    (msg,) = cases(store).outbox()
    assert msg["status"] == "dead"
    assert msg["attempts"] == 3
    assert msg["last_error"] == "webhook: ConnectError"
    assert requeue(store, msg["id"], now=when)
    assert cases(store).outbox("pending")[0]["id"] == msg["id"]


def test_email_reaches_a_real_smtp_server(tmp_path: Path, smtp_server: tuple[int, list[bytes]]) -> None:
    port, got = smtp_server
    store = _case_with_messages(tmp_path, ("email",))
    senders = {"email": SmtpSender("127.0.0.1", port, "soc@hospital.example", ["oncall@hospital.example"])}
    assert dispatch(store, senders, now=NOW)["sent"] == 1
    (raw,) = got
    mail = message_from_bytes(raw)
    assert mail["Subject"].startswith("healthsec: case.opened - case case-")
    text = mail.get_payload(decode=True).decode()
    assert "link: https://soc.example/cases/case-" in text
    assert "MRN100111" not in raw.decode()


def test_apprise_posts_json_to_a_local_endpoint(tmp_path: Path, receiver: Receiver) -> None:
    store = _case_with_messages(tmp_path, ("apprise",))
    url = receiver.url.replace("http://", "json://")
    assert dispatch(store, {"apprise": AppriseSender([url])}, now=NOW)["sent"] == 1
    _, body = receiver.got[-1]
    doc = json.loads(body)
    assert "case.opened" in doc["title"]
    assert "MRN100111" not in body.decode()
