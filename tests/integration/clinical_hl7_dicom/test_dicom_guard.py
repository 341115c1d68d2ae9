"""Hostile peers against the DICOM monitor (issue 18 item 9): idle floods, per-client floods, huge PDUs."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE

from healthsec.ingest.dicom import DicomMonitor
from healthsec.ingest.dicom.guard import GuardLimits
from healthsec.model import Event, ParseError
from healthsec.testing.waiting import wait_until as _wait

pytestmark = pytest.mark.integration

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"


def _monitor(**limits: float) -> tuple[DicomMonitor, list[Event], list[ParseError]]:
    events: list[Event] = []
    errors: list[ParseError] = []
    mon = DicomMonitor(port=0, on_event=events.append, on_error=errors.append, limits=GuardLimits(**limits))  # type: ignore[arg-type]
    mon.start()
    return mon, events, errors


@pytest.fixture
def patient_monitor() -> Iterator[tuple[DicomMonitor, list[Event], list[ParseError]]]:
    """Idle peers may wait 30 s: long enough that they still hold their connections during the test."""
    mon, events, errors = _monitor(idle_s=30.0, per_client=4)
    yield mon, events, errors
    mon.stop()


def _connect(port: int, source: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def _closed_by_server(s: socket.socket, wait: float = 3.0) -> bool:
    s.settimeout(wait)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def _store(port: int, ct_file: Path) -> int:
    ae = AE(ae_title="MODALITY1")
    ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = 10
    ae.add_requested_context(CT_STORAGE)
    assoc = ae.associate("127.0.0.1", port, ae_title="HEALTHSEC")
    assert assoc.is_established, "the association was not accepted"
    status = int(assoc.send_c_store(pydicom.dcmread(ct_file)).Status)
    assoc.release()
    return status


@pytest.fixture
def ct_file(shared_data: Path) -> Path:
    return shared_data / "dicom-samples" / "pydicom_test_files" / "CT_small.dcm"


def test_ten_idle_connections_do_not_take_the_association_slots(
    patient_monitor: tuple[DicomMonitor, list[Event], list[ParseError]], ct_file: Path
) -> None:
    mon, _, _ = patient_monitor
    # ten silent peers from ten addresses: pynetdicom alone gives each an association slot (10 in all)
    idle = [_connect(mon.port, f"127.0.0.{i}") for i in range(2, 12)]
    try:
        _wait(lambda: mon._server is not None and mon._server._pending.total() == 10)
        assert mon._server is not None and mon._server._pending.total() == 10
        assert _store(mon.port, ct_file) == 0x0000  # a real modality still stores
        assert not any(_closed_by_server(s, 0.05) for s in idle)  # the idle ones were still waiting
    finally:
        for s in idle:
            s.close()
    _wait(lambda: mon.stats.truncated >= 10)
    assert mon.stats.truncated == 10


def test_idle_connection_is_closed_after_the_idle_bound(ct_file: Path) -> None:
    mon, events, errors = _monitor(idle_s=0.3)
    try:
        with _connect(mon.port, "127.0.0.1") as s:
            s.sendall(b"\x01\x00")  # two bytes of a header, then silence (slowloris)
            assert _closed_by_server(s, 10.0)
        _wait(lambda: errors)
        assert "no complete association request" in errors[0].reason
        assert "\x01" not in errors[0].reason  # no peer bytes quoted
        assert [e.message_type for e in events] == ["TRUNCATED-ASSOCIATION"]  # type: ignore[attr-defined]
        assert _store(mon.port, ct_file) == 0x0000
    finally:
        mon.stop()


def test_one_client_gets_at_most_its_share_of_connections(
    patient_monitor: tuple[DicomMonitor, list[Event], list[ParseError]], ct_file: Path
) -> None:
    mon, _, _ = patient_monitor
    flood = [_connect(mon.port, "127.0.0.12") for _ in range(10)]
    try:
        _wait(lambda: mon.stats.refused >= 6)
        closed = [_closed_by_server(s, 0.5) for s in flood]
        assert sum(closed) == 6  # the first 4 wait for their request, the other 6 are refused at once
        assert mon.stats.refused == 6
        assert _store(mon.port, ct_file) == 0x0000  # another client is not affected
    finally:
        for s in flood:
            s.close()


def test_associate_request_declaring_4_gb_is_refused_without_reading_it() -> None:
    mon, _events, errors = _monitor(idle_s=30.0)
    try:
        s = _connect(mon.port, "127.0.0.1")
        sent = 0
        chunk = b"\x00" * (1 << 20)
        with contextlib.suppress(OSError), s:
            s.sendall(b"\x01\x00\xff\xff\xff\xff")  # A-ASSOCIATE-RQ, declared length 4 GiB - 1
            while sent < 200 * (1 << 20):  # try to stream 200 MB of it
                s.sendall(chunk)
                sent += len(chunk)
        # the server closed after the 6-byte header: only what the kernel buffers took got out
        assert sent < 16 * (1 << 20)
        _wait(lambda: mon.stats.oversized >= 1)
        assert mon.stats.oversized == 1
        assert "declares 4294967295 bytes" in errors[0].reason
    finally:
        mon.stop()


def test_first_pdu_that_is_not_an_associate_request_is_refused() -> None:
    mon, _, errors = _monitor(idle_s=30.0)
    try:
        with _connect(mon.port, "127.0.0.1") as s:
            s.sendall(b"\x04\x00\xff\xff\xff\xff")  # P-DATA-TF of 4 GB before any association
            assert _closed_by_server(s, 10.0)
        _wait(lambda: errors)
        assert "not A-ASSOCIATE-RQ" in errors[0].reason
    finally:
        mon.stop()


def test_pdu_over_the_limit_after_association_closes_the_connection() -> None:
    mon, _, _ = _monitor(idle_s=30.0, max_pdu_bytes=64 * 1024)
    try:
        ae = AE(ae_title="MODALITY1")
        ae.add_requested_context(VERIFICATION)
        assoc = ae.associate("127.0.0.1", mon.port, ae_title="HEALTHSEC")
        assert assoc.is_established
        assert assoc.acceptor.maximum_length == 64 * 1024  # the limit is announced to the peer
        raw = assoc.dul.socket.socket
        assert raw is not None
        with contextlib.suppress(OSError):
            raw.sendall(b"\x04\x00\x10\x00\x00\x00" + b"\x00" * 4096)  # declares 256 MiB
        _wait(lambda: mon.stats.oversized >= 1)
        assert mon.stats.oversized == 1
        _wait(lambda: not assoc.is_alive())
        assert not assoc.is_established
    finally:
        mon.stop()
