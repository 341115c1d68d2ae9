"""A real pynetdicom SCU against the DICOM monitor and proxy on loopback (port 0)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE

from healthsec.detect.clinical.dicom import DicomDetector
from healthsec.ingest.dicom import DicomMonitor
from healthsec.model import Alert, ClinicalMessage, Event, ParseError
from healthsec.testing.waiting import wait_until as _wait

pytestmark = pytest.mark.integration

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
VERIFICATION = "1.2.840.10008.1.1"


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.alerts: list[Alert] = []
        self.errors: list[ParseError] = []

    def ops(self) -> list[str]:
        return [e.message_type for e in self.events if isinstance(e, ClinicalMessage)]


@pytest.fixture
def ct_file(shared_data: Path) -> Path:
    return shared_data / "dicom-samples" / "pydicom_test_files" / "CT_small.dcm"


@pytest.fixture
def monitor() -> Iterator[tuple[DicomMonitor, Sink]]:
    sink = Sink()
    det = DicomDetector()
    from datetime import UTC, datetime

    from healthsec.model import stable_id

    # Baseline: the modality MODALITY1 from 127.0.0.1 echoes, stores and moves to PACS_VIEW.
    det.fit(
        [
            ClinicalMessage(
                id=stable_id("t", op),
                ts=datetime.now(UTC),
                source="t",
                protocol="dicom",
                message_type=op,
                sender="MODALITY1",
                src_ip="127.0.0.1",
                fields={"move_destination": "PACS_VIEW"} if op == "C-MOVE" else {},
            )
            for op in ("A-ASSOCIATE", "C-ECHO", "C-STORE", "C-MOVE")
        ]
    )
    mon = DicomMonitor(
        port=0,
        detectors=[det],
        on_event=sink.events.append,
        on_alert=sink.alerts.append,
        on_error=sink.errors.append,
        move_destinations={"PACS_VIEW": ("127.0.0.1", 1)},
    )
    mon.start()
    yield mon, sink
    mon.stop()


def _assoc(port: int, aet: str, *contexts: str) -> object:
    ae = AE(ae_title=aet)
    for c in contexts:
        ae.add_requested_context(c)
    assoc = ae.associate("127.0.0.1", port, ae_title="HEALTHSEC")
    assert assoc.is_established
    return assoc


def test_echo_store_find_are_logged_with_ae_titles(monitor: tuple[DicomMonitor, Sink], ct_file: Path) -> None:
    mon, sink = monitor
    assoc = _assoc(mon.port, "MODALITY1", VERIFICATION, CT_STORAGE, STUDY_FIND)
    assert assoc.send_c_echo().Status == 0x0000  # type: ignore[attr-defined]
    ds = pydicom.dcmread(ct_file)
    assert assoc.send_c_store(ds).Status == 0x0000  # type: ignore[attr-defined]
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientName = "*"
    query.PatientID = ""
    statuses = [int(s.Status) for s, _ in assoc.send_c_find(query, STUDY_FIND)]  # type: ignore[attr-defined]
    assoc.release()  # type: ignore[attr-defined]
    assert statuses == [0x0000]
    _wait(lambda: "C-FIND" in sink.ops())
    assert sink.ops()[:4] == ["A-ASSOCIATE", "C-ECHO", "C-STORE", "C-FIND"]
    store = next(e for e in sink.events if isinstance(e, ClinicalMessage) and e.message_type == "C-STORE")
    assert store.sender == "MODALITY1"
    assert store.receiver == "HEALTHSEC"
    assert store.src_ip == "127.0.0.1"
    assert store.fields["sop_class"] == CT_STORAGE
    assert store.fields["malformed"] == []
    rules = {a.detector for a in sink.alerts}
    assert rules == {"dicom.wildcard-query"}  # a known AE storing from its usual peer raises nothing
    assert mon.stats.operations == {"C-ECHO": 1, "C-STORE": 1, "C-FIND": 1}


def test_unknown_ae_and_move_to_new_destination_alert(monitor: tuple[DicomMonitor, Sink]) -> None:
    mon, sink = monitor
    assoc = _assoc(mon.port, "ROGUE", STUDY_MOVE)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = "1.2.3"
    statuses = [int(s.Status) for s, _ in assoc.send_c_move(query, "EXFIL_AE", STUDY_MOVE)]  # type: ignore[attr-defined]
    assoc.release()  # type: ignore[attr-defined]
    assert statuses == [0xA801]  # unknown move destination refused
    _wait(lambda: len(sink.alerts) >= 2)
    rules = sorted(a.detector for a in sink.alerts)
    assert rules == ["dicom.new-destination", "dicom.unknown-ae"]
    move = next(a for a in sink.alerts if a.detector == "dicom.new-destination")
    assert "T1048" in move.techniques
    assert "EXFIL_AE" in move.explanation


def test_truncated_association_is_reported_and_server_keeps_serving(
    monitor: tuple[DicomMonitor, Sink],
) -> None:
    mon, sink = monitor
    # An A-ASSOCIATE-RQ PDU header announcing 200 bytes, followed by 10, then the peer disappears.
    with socket.create_connection(("127.0.0.1", mon.port)) as s:
        s.sendall(b"\x01\x00\x00\x00\x00\xc8" + b"\x00\x01" + b"\x00" * 8)
    _wait(lambda: mon.stats.truncated >= 1)
    assert mon.stats.truncated == 1
    assert any("truncated association" in e.reason for e in sink.errors)
    assert any(a.detector == "dicom.truncated-association" for a in sink.alerts)
    assoc = _assoc(mon.port, "MODALITY1", VERIFICATION)
    assert assoc.send_c_echo().Status == 0x0000  # type: ignore[attr-defined]
    assoc.release()  # type: ignore[attr-defined]


def test_proxy_forwards_store_and_find_to_upstream(ct_file: Path) -> None:
    pacs = Sink()
    upstream = DicomMonitor(port=0, ae_title="PACS", on_event=pacs.events.append)
    upstream.start()
    sink = Sink()
    proxy = DicomMonitor(port=0, upstream=("127.0.0.1", upstream.port, "PACS"), on_event=sink.events.append)
    proxy.start()
    try:
        assoc = _assoc(proxy.port, "MODALITY1", CT_STORAGE, STUDY_FIND, VERIFICATION)
        assert assoc.send_c_echo().Status == 0x0000  # type: ignore[attr-defined]
        assert assoc.send_c_store(pydicom.dcmread(ct_file)).Status == 0x0000  # type: ignore[attr-defined]
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.PatientID = "1CT1"
        assert [int(s.Status) for s, _ in assoc.send_c_find(query, STUDY_FIND)] == [0]  # type: ignore[attr-defined]
        assoc.release()  # type: ignore[attr-defined]
        _wait(lambda: "C-FIND" in pacs.ops())
        assert {"C-ECHO", "C-STORE", "C-FIND"} <= set(pacs.ops())
        stored = next(
            e for e in pacs.events if isinstance(e, ClinicalMessage) and e.message_type == "C-STORE"
        )
        assert stored.sender == "HEALTHSEC"
        assert stored.fields["sop_class"] == CT_STORAGE
        assert proxy.stats.forwarded == 3
        assert proxy.stats.upstream_failures == 0
    finally:
        proxy.stop()
        upstream.stop()


def test_proxy_relays_c_get_from_upstream(ct_file: Path) -> None:
    from pynetdicom import build_role, evt

    ct = pydicom.dcmread(ct_file)

    def serve_get(event: object) -> object:
        yield 1
        yield 0xFF00, ct

    pacs_ae = AE(ae_title="PACS")
    pacs_ae.add_supported_context(STUDY_GET)
    pacs_ae.add_supported_context(CT_STORAGE, scu_role=True, scp_role=True)
    pacs = pacs_ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_GET, serve_get)])
    sink = Sink()
    proxy = DicomMonitor(
        port=0, upstream=("127.0.0.1", pacs.server_address[1], "PACS"), on_event=sink.events.append
    )
    proxy.start()
    received: list[Dataset] = []

    def on_store(event: object) -> int:
        received.append(event.dataset)  # type: ignore[attr-defined]
        return 0

    try:
        ae = AE(ae_title="VIEWER1")
        ae.add_requested_context(STUDY_GET)
        ae.add_requested_context(CT_STORAGE)
        assoc = ae.associate(
            "127.0.0.1",
            proxy.port,
            ae_title="HEALTHSEC",
            ext_neg=[build_role(CT_STORAGE, scp_role=True)],
            evt_handlers=[(evt.EVT_C_STORE, on_store)],
        )
        assert assoc.is_established
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = str(ct.StudyInstanceUID)
        statuses = [int(s.Status) for s, _ in assoc.send_c_get(query, STUDY_GET)]
        assoc.release()
        assert statuses[-1] == 0x0000
        assert [str(d.SOPInstanceUID) for d in received] == [str(ct.SOPInstanceUID)]
        assert "C-GET" in sink.ops() and proxy.stats.forwarded == 1
    finally:
        proxy.stop()
        pacs.shutdown()


def test_proxy_forwards_c_move_with_the_same_destination() -> None:
    pacs = Sink()
    upstream = DicomMonitor(
        port=0, ae_title="PACS", on_event=pacs.events.append, move_destinations={"VIEWER1": ("127.0.0.1", 9)}
    )
    upstream.start()
    proxy = DicomMonitor(
        port=0, upstream=("127.0.0.1", upstream.port, "PACS"), move_destinations={"VIEWER1": ("127.0.0.1", 9)}
    )
    proxy.start()
    try:
        assoc = _assoc(proxy.port, "VIEWER1", STUDY_MOVE)
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = "1.2.3"
        ok = [int(s.Status) for s, _ in assoc.send_c_move(query, "VIEWER1", STUDY_MOVE)]
        refused = [int(s.Status) for s, _ in assoc.send_c_move(query, "EXFIL_AE", STUDY_MOVE)]
        assoc.release()
        assert ok == [0x0000] and refused == [0xA801]
        _wait(lambda: pacs.ops().count("C-MOVE") == 2)
        moves = [e for e in pacs.events if isinstance(e, ClinicalMessage) and e.message_type == "C-MOVE"]
        assert [m.fields["move_destination"] for m in moves] == ["VIEWER1", "EXFIL_AE"]
    finally:
        proxy.stop()
        upstream.stop()
