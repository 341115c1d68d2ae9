"""DICOM file inspection and the DICOM detector, on the real sample files and generated attacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from healthsec.detect.base import AlertingDetector
from healthsec.detect.clinical.dicom import DicomDetector
from healthsec.ingest.dicom import (
    DicomFileSource,
    classify_preamble,
    file_event,
    inspect_bytes,
    wildcard_keys,
)
from healthsec.model import ClinicalMessage, ParseError, stable_id
from healthsec.testing import dicom_attacks as dat

NOW = datetime(2025, 1, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def samples(shared_data: Path) -> Path:
    return shared_data / "dicom-samples"


def test_garbage_and_empty_input_are_parse_errors_not_crashes() -> None:
    for data in (b"", b"hello world", b"\x00" * 10, b"\x00" * 128 + b"DICM"):
        item = file_event(data, source="t", locator="x.dcm", received=NOW)
        if isinstance(item, ParseError):
            assert item.locator == "x.dcm" and "not a DICOM file" in item.reason
        else:
            assert item.fields["malformed"]  # DICM with nothing after it is reported


def test_preamble_classes() -> None:
    assert classify_preamble(b"\x00" * 132) == "zero"
    assert classify_preamble(b"II*\x00" + b"\x00" * 128) == "tiff"
    assert classify_preamble(dat.pe_polyglot(b"\x00" * 200)) == "pe"
    assert classify_preamble(b"MZ" + b"\x00" * 130) == "dos-mz"
    assert classify_preamble(b"\x7fELF" + b"\x00" * 128) == "elf"


def test_sample_files_inspect_without_false_findings(samples: Path) -> None:
    items = list(DicomFileSource([samples]).read())
    events = [i for i in items if isinstance(i, ClinicalMessage)]
    findings = sorted(Path(str(e.fields["file"])).name for e in events if e.fields["malformed"])
    assert findings == [
        "CTImageStorage_bad_meta.dcm",
        "MR_truncated.dcm",
        "empty_charset_LEI.dcm",
        "meta_missing_tsyntax.dcm",
        "rtplan_truncated.dcm",
    ]  # all deliberately broken upstream
    assert all(e.fields["preamble"] in ("zero", "tiff", "other", "none") for e in events)
    assert len(events) >= 170
    assert {Path(e.locator).name for e in items if isinstance(e, ParseError)} >= {"README.txt", "SOURCE.md"}


@pytest.mark.parametrize("attack", sorted(dat.FILE_ATTACKS))
def test_file_attacks_are_found(samples: Path, attack: str) -> None:
    fn, _ = dat.FILE_ATTACKS[attack]
    data = fn((samples / "pydicom_test_files" / "CT_small.dcm").read_bytes())
    ev = file_event(data, source="t", locator="attack.dcm", received=NOW)
    assert isinstance(ev, ClinicalMessage)
    rules = {a.detector for a in DicomDetector().detect([ev])}
    expected = "dicom.polyglot" if "polyglot" in attack else "dicom.malformed"
    assert expected in rules
    if attack == "pe-polyglot":
        alert = DicomDetector().detect([ev])[0]
        assert alert.severity.label == "critical" and "T1027.009" in alert.techniques


def test_truncated_value_is_named(samples: Path) -> None:
    ins = inspect_bytes(dat.truncated((samples / "pydicom_test_files" / "MR_small.dcm").read_bytes()))
    assert any("(7FE0,0010) declares 8192 bytes" in m for m in ins.malformed)


def _op(op: str, ae: str, ts: datetime, **fields: object) -> ClinicalMessage:
    return ClinicalMessage(
        id=stable_id("t", op, ae, ts.isoformat()),
        ts=ts,
        source="t",
        protocol="dicom",
        message_type=op,
        sender=ae,
        src_ip="10.0.0.5",
        fields=fields,
    )


def test_network_rules_against_a_baseline() -> None:
    det = DicomDetector()
    assert isinstance(det, AlertingDetector)
    det.fit(
        [
            _op("A-ASSOCIATE", "CT1", NOW),
            _op("C-STORE", "CT1", NOW),
            _op("A-ASSOCIATE", "VIEW1", NOW),
            _op("C-MOVE", "VIEW1", NOW, move_destination="VIEW1"),
        ]
    )
    assert (
        det.detect([_op("A-ASSOCIATE", "CT1", NOW), _op("C-MOVE", "VIEW1", NOW, move_destination="VIEW1")])
        == []
    )
    assert [a.detector for a in det.detect([_op("A-ASSOCIATE", "ROGUE", NOW)])] == ["dicom.unknown-ae"]
    assert [a.detector for a in det.detect([_op("C-STORE", "VIEW1", NOW)])] == ["dicom.unexpected-store"]
    moves = [_op("C-MOVE", "VIEW1", NOW + timedelta(seconds=i), move_destination="VIEW1") for i in range(25)]
    assert [a.detector for a in det.detect(moves)] == ["dicom.bulk-retrieval"]
    again = DicomDetector()
    again.load_dict(orjson.loads(orjson.dumps(det.to_dict())))
    assert again.aes == det.aes


def test_wildcard_query_shapes() -> None:
    from pydicom.dataset import Dataset

    def q(**kw: str) -> Dataset:
        ds = Dataset()
        for k, v in kw.items():
            setattr(ds, k, v)
        return ds

    assert wildcard_keys(q(QueryRetrieveLevel="STUDY", PatientName="*", PatientID="")) == [
        "PatientName",
        "PatientID",
    ]
    assert wildcard_keys(q(QueryRetrieveLevel="STUDY", PatientName="S*")) == ["PatientName"]
    assert wildcard_keys(q(QueryRetrieveLevel="STUDY", PatientName="SMITH*")) == []
    assert wildcard_keys(q(QueryRetrieveLevel="STUDY", PatientName="*", PatientID="12345")) == []
    assert wildcard_keys(q(QueryRetrieveLevel="PATIENT", PatientID="")) == ["PatientID"]
    assert wildcard_keys(q(QueryRetrieveLevel="STUDY", PatientName="*", StudyInstanceUID="1.2.3")) == []
