"""A real MLLP client (python-hl7's MLLPClient) against the HL7 listener as tap and as inline proxy."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import hl7
import pytest
from hl7.client import MLLPClient

from healthsec.detect.clinical.hl7 import HL7Detector
from healthsec.ingest.hl7 import HL7FileSource, HL7Listener, ack_code_of
from healthsec.model import Alert, ClinicalMessage, Event, ParseError, Severity

pytestmark = pytest.mark.integration


class Running:
    """An HL7Listener served by an event loop in a background thread."""

    def __init__(self, listener: HL7Listener) -> None:
        self.listener = listener
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(listener.start(), self.loop).result(5)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.listener.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.alerts: list[Alert] = []
        self.errors: list[ParseError] = []


def _wait(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and not cond():
        time.sleep(0.02)


@pytest.fixture
def benign(shared_data: Path) -> list[ClinicalMessage]:
    folder = shared_data / "hl7v2-fhir-samples-cdc" / "examples"
    events = [
        e
        for e in HL7FileSource([folder / "Ochsner", folder / "Oracle"]).read()
        if isinstance(e, ClinicalMessage)
    ]
    assert len(events) >= 6
    return events


def _start(sink: Sink, **kw: object) -> Running:
    listener = HL7Listener(
        port=0, on_event=sink.events.append, on_alert=sink.alerts.append, on_error=sink.errors.append, **kw
    )  # type: ignore[arg-type]
    return Running(listener)


@pytest.fixture
def tap(benign: list[ClinicalMessage]) -> Iterator[tuple[Running, Sink]]:
    det = HL7Detector()
    det.fit(benign)
    sink = Sink()
    run = _start(sink, detectors=[det])
    yield run, sink
    run.close()


def _text(ev: ClinicalMessage) -> str:
    return str(ev.fields["text"])


def test_tap_acknowledges_real_messages_with_aa(
    tap: tuple[Running, Sink], benign: list[ClinicalMessage]
) -> None:
    run, sink = tap
    with MLLPClient("127.0.0.1", run.port) as client:
        replies = [client.send_message(_text(ev)).decode() for ev in benign[:3]]
    codes = [ack_code_of(r.strip("\x0b\x1c\r")) for r in replies]
    assert codes == ["AA", "AA", "AA"]
    ack = hl7.parse(replies[0].strip("\x0b\x1c\r"))
    assert str(ack.segment("MSA")[2]) == benign[0].fields["control_id"]  # MSA-2 echoes MSH-10
    assert run.listener.stats.accepted == 3
    assert sink.alerts == []
    assert [e.sender for e in sink.events] == [e.sender for e in benign[:3]]


def test_malformed_message_gets_nack_and_alert(
    tap: tuple[Running, Sink], benign: list[ClinicalMessage]
) -> None:
    run, sink = tap
    msh, rest = _text(benign[0]).split("\r", 1)
    parts = msh.split("|")
    parts[8] = ""  # MSH-9 message type removed
    broken_type = "|".join(parts) + "\r" + rest
    with MLLPClient("127.0.0.1", run.port) as client:
        r1 = client.send_message(broken_type).decode().strip("\x0b\x1c\r")
        r2 = client.send_message("this is not HL7 at all").decode().strip("\x0b\x1c\r")
        r3 = client.send_message(_text(benign[1])).decode().strip("\x0b\x1c\r")  # connection still usable
    assert ack_code_of(r1) == "AR"
    assert "MSH-9 message type missing" in r1
    assert ack_code_of(r2) == "AR"
    assert "ERR|" in r2
    assert ack_code_of(r3) == "AA"
    rules = [a.detector for a in sink.alerts]
    assert rules.count("hl7.malformed") == 2
    assert run.listener.stats.rejected == 2
    assert run.listener.stats.accepted == 1


def test_injection_in_field_is_alerted_without_phi(
    tap: tuple[Running, Sink], benign: list[ClinicalMessage]
) -> None:
    run, sink = tap
    ev = benign[0]
    assert ev.patient_id
    attacked = _text(ev).replace("\rPID|", "\rNTE|1||'; DROP TABLE patients; --\rPID|", 1)
    with MLLPClient("127.0.0.1", run.port) as client:
        reply = client.send_message(attacked).decode().strip("\x0b\x1c\r")
    assert ack_code_of(reply) == "AA"  # a tap observes; blocking is the proxy's job
    inj = [a for a in sink.alerts if a.detector == "hl7.injection"]
    assert len(inj) == 1
    assert "T1190" in inj[0].techniques
    assert "NTE-3" in inj[0].explanation
    assert ev.patient_id not in inj[0].explanation
    assert all(ev.patient_id not in ent.value for ent in inj[0].entities)


def test_client_disconnecting_mid_message_is_reported_and_listener_survives(
    tap: tuple[Running, Sink], benign: list[ClinicalMessage]
) -> None:
    run, sink = tap
    with socket.create_connection(("127.0.0.1", run.port)) as s:
        s.sendall(b"\x0b" + _text(benign[0]).encode()[:200])  # no <FS><CR>: cut off mid-message
    _wait(lambda: run.listener.stats.truncated == 1)
    assert run.listener.stats.truncated == 1
    assert any("inside an MLLP block" in e.reason for e in sink.errors)
    with MLLPClient("127.0.0.1", run.port) as client:
        assert ack_code_of(client.send_message(_text(benign[1])).decode().strip("\x0b\x1c\r")) == "AA"


def test_oversized_message_is_rejected(benign: list[ClinicalMessage]) -> None:
    sink = Sink()
    run = _start(sink, detectors=[HL7Detector(max_size=4096)], max_size=4096)
    try:
        big = _text(benign[0]) + "\rNTE|1||" + "A" * 10_000
        with MLLPClient("127.0.0.1", run.port) as client:
            reply = client.send_message(big).decode().strip("\x0b\x1c\r")
            after = client.send_message(_text(benign[1])).decode().strip("\x0b\x1c\r")
        assert ack_code_of(reply) == "AR"
        assert "larger than 4096 bytes" in reply
        assert ack_code_of(after) == "AA"
        assert {"hl7.oversized", "hl7.malformed"} <= {a.detector for a in sink.alerts}
    finally:
        run.close()


def test_proxy_relays_engine_ack_and_blocks_attacks(benign: list[ClinicalMessage]) -> None:
    engine_sink = Sink()
    engine = _start(engine_sink)  # a tap stands in for the interface engine
    det = HL7Detector()
    det.fit(benign)
    sink = Sink()
    proxy = _start(
        sink, mode="proxy", upstream=("127.0.0.1", engine.port), detectors=[det], block_at=Severity.HIGH
    )
    try:
        attack = _text(benign[0]).replace("\rPID|", "\rNTE|1||<script>alert(1)</script>\rPID|", 1)
        with MLLPClient("127.0.0.1", proxy.port) as client:
            ok = client.send_message(_text(benign[0])).decode().strip("\x0b\x1c\r")
            blocked = client.send_message(attack).decode().strip("\x0b\x1c\r")
        assert ack_code_of(ok) == "AA"
        assert ack_code_of(blocked) == "AR"
        assert "rejected by security policy" in blocked
        _wait(lambda: len(engine_sink.events) >= 1)
        assert len(engine_sink.events) == 1  # the attack never reached the engine
        assert proxy.listener.stats.forwarded == 1
        assert proxy.listener.stats.rejected == 1
        # the engine's own ACKs are not mistaken for a sender's new message type
        assert {a.detector for a in sink.alerts} == {"hl7.injection"}
    finally:
        proxy.close()
        engine.close()


def test_proxy_nacks_when_engine_is_down(benign: list[ClinicalMessage]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    sink = Sink()
    proxy = _start(sink, mode="proxy", upstream=("127.0.0.1", dead_port), upstream_timeout=2.0)
    try:
        with MLLPClient("127.0.0.1", proxy.port) as client:
            reply = client.send_message(_text(benign[0])).decode().strip("\x0b\x1c\r")
        assert ack_code_of(reply) == "AE"
        assert "upstream" in reply
        assert proxy.listener.stats.upstream_failures == 1
    finally:
        proxy.close()


def test_idle_client_mid_message_is_dropped(benign: list[ClinicalMessage]) -> None:
    sink = Sink()
    run = _start(sink, idle_timeout=0.5)
    try:
        with socket.create_connection(("127.0.0.1", run.port)) as s:
            s.sendall(b"\x0b" + _text(benign[0]).encode()[:100])  # then silence, connection kept open
            _wait(lambda: run.listener.stats.truncated == 1)
            assert s.recv(10) == b""  # the listener closed its side
        assert any("inside an MLLP block" in e.reason for e in sink.errors)
    finally:
        run.close()
