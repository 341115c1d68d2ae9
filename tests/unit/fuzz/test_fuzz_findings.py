"""Regression tests for the crashes fuzzing found (benchmarks/fuzz.py, docs/fuzzing.md), one per finding."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import orjson

from healthsec.ingest.hl7.pcap import HL7PcapSource
from healthsec.ingest.telemetry.csv_source import TelemetryCsvSource
from healthsec.model import DeviceReading, ParseError


def test_pcap_record_declaring_4_gb_is_not_allocated(shared_data: Path, tmp_path: Path) -> None:
    real = (shared_data / "protocol-pcaps-ndpi" / "pcap" / "hl7.pcap").read_bytes()
    # the first record header (after the 24-byte global header) claims caplen = 0xFFFFFFF0
    ts_sec, ts_usec, _caplen, origlen = struct.unpack("<IIII", real[24:40])
    hostile = real[:24] + struct.pack("<IIII", ts_sec, ts_usec, 0xFFFFFFF0, origlen) + real[40:]
    path = tmp_path / "hostile.pcap"
    path.write_bytes(hostile)
    tracemalloc.start()
    try:
        items = list(HL7PcapSource([path]).read())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024  # was 4 GB asked of the allocator (134 MB for a 0x08000000 caplen)
    assert all(isinstance(i, ParseError) or i.kind == "clinical" for i in items)


def test_telemetry_csv_with_a_bare_cr_in_a_field_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "thermostat.csv"
    path.write_bytes(
        b"date,time,current_temperature,thermostat_status,label,type\r\n"
        b"25-Apr-19,8:59:02,30.57,1,1,injection\r\n"
        b'25-Apr-19,8:59:06,"29.1\r8",1,1,injection\r\n'  # quoted: fine
        b"25-Apr-19,8:59:07,29.1\r8,1,1,injection\r\n"  # bare CR inside an unquoted field
    )
    items = list(TelemetryCsvSource(path, "ton-iot").read())
    assert isinstance(items[0], DeviceReading)
    errors = [i for i in items if isinstance(i, ParseError)]
    assert errors, items
    assert all(str(path) in e.locator for e in errors)


def test_dicom_deferred_element_that_cannot_convert_is_reported_not_raised() -> None:
    """Fuzzing found pydicom converting a deferred element inside ``get_item`` (unknown VR, bad UID)."""
    from pydicom.dataelem import RawDataElement
    from pydicom.dataset import Dataset
    from pydicom.tag import Tag

    from healthsec.ingest.dicom.inspect import _checked

    ds = Dataset()
    tag = Tag(0x1D004610)
    ds._dict[tag] = RawDataElement(tag, "\x44\x08", 4, None, 0, False, True)  # deferred, unknown VR
    problems = _checked(ds, b"")
    assert any("(1D00,4610) cannot be decoded" in p for p in problems)


def test_fhir_directory_with_wrongly_shaped_fields_names_the_resource(tmp_path: Path) -> None:
    """Fuzzing found `AttributeError: 'list' object has no attribute 'get'` (a PractitionerRole whose
    ``code`` holds a list or null where a CodeableConcept goes); ints where lists go raised TypeError."""
    from healthsec.ingest.fhir.bundles import load_directory

    lines = [
        {
            "resourceType": "PractitionerRole",
            "id": "r1",
            "practitioner": {"reference": "Practitioner/p1"},
            "code": [["nurse"], None, {"coding": "x"}, {"coding": [7]}],
        },
        {"resourceType": "Patient", "id": "pt1", "name": 5, "meta": {"security": 3}},
        {"resourceType": "Practitioner", "id": "p1", "identifier": {"value": "1"}, "name": [None]},
        {
            "resourceType": "Encounter",
            "id": "e1",
            "subject": {"reference": "Patient/pt1"},
            "participant": [None, 4, {"individual": {"reference": "Practitioner/p1"}}],
        },
        {"resourceType": "CareTeam", "id": "c1", "subject": {"reference": "Patient/pt1"}, "participant": "x"},
        {"resourceType": "Bundle", "entry": 5},
    ]
    folder = tmp_path / "bundles"
    folder.mkdir()
    (folder / "directory.ndjson").write_text("\n".join(orjson.dumps(x).decode() for x in lines) + "\n")
    directory = load_directory([folder])
    assert directory.patients == ["pt1"] and directory.practitioners == ["Practitioner/p1"]
    assert directory.context.care == {"Practitioner/p1": frozenset({"pt1"})}  # the well-formed link kept
    reasons = [e.reason for e in directory.errors]
    for named in (
        "PractitionerRole/r1: 'code'",
        "Patient/pt1: 'name'",
        "Patient/pt1: 'meta.security'",
        "Practitioner/p1: 'identifier'",
        "Encounter/e1: 'participant'",
        "CareTeam/c1: 'participant'",
        "Bundle: 'entry'",
    ):
        assert any(r.startswith(named) for r in reasons), (named, reasons)
