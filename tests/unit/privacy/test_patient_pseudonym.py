"""One patient, one entity id: HL7 ADT, FHIR AuditEvent and a DICOM study all yield the same pseudonym."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian

from healthsec.analyze.correlate import correlate
from healthsec.config import ConfigError, Settings, load_patient_key
from healthsec.detect.clinical.access import AccessDetector
from healthsec.detect.clinical.baseline import CareRelationshipDetector
from healthsec.detect.clinical.dicom import DicomDetector
from healthsec.detect.clinical.hl7 import HL7Detector
from healthsec.ingest.dicom import file_event
from healthsec.ingest.fhir.auditevent import to_access
from healthsec.ingest.hl7.parse import message_event
from healthsec.model import ClinicalMessage, EntityKind, RecordAccess
from healthsec.model.care import CareContext
from healthsec.model.codec import to_dict
from healthsec.privacy.pseudonymise import patient_pseudonym, patient_ref
from healthsec.testing.dicom_attacks import pe_polyglot

KEY = b"site-patient-secret-0123456789abcdef"
NOW = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


def test_the_same_patient_written_three_ways_is_one_id() -> None:
    ids = {
        patient_pseudonym(KEY, "12345^^^HOSP&1.2.3&ISO^MR~999^^^OTHER^PI", local_authority="HOSP"),
        patient_pseudonym(KEY, "Patient/12345", local_authority="HOSP"),
        patient_pseudonym(KEY, "https://ehr.example/fhir/Patient/12345/_history/3", local_authority="HOSP"),
        patient_pseudonym(KEY, " 12345 ", local_authority="HOSP"),
        patient_pseudonym(KEY, "12345", authority="hosp", local_authority="HOSP"),
    }
    assert len(ids) == 1
    (one,) = ids
    assert one.startswith("patient-") and len(one) == len("patient-") + 20


def test_authority_leading_zeros_and_key_keep_patients_apart() -> None:
    local = patient_pseudonym(KEY, "12345")
    assert patient_pseudonym(KEY, "12345^^^OTHER^MR") != local  # another hospital's MRN 12345
    assert patient_pseudonym(KEY, "urn:oid:1.2.9|12345") != local  # FHIR identifier of another system
    assert patient_pseudonym(KEY, "012345") != local  # leading zeros are significant
    assert patient_pseudonym(KEY, "MRN7") == patient_pseudonym(KEY, "mrn7")  # case is not
    assert patient_pseudonym(b"another-secret-of-16+bytes", "12345") != local
    assert patient_ref("12345^^^^MR") == ("", "12345")  # CX.4 empty: local
    assert patient_ref("12345^^^&1.2.3&ISO^MR") == ("1.2.3", "12345")  # universal id when no namespace


def test_bad_identifiers_and_keys_are_refused_with_the_reason() -> None:
    for bad in ("", "   ", "^^^HOSP^MR", "Patient/"):
        with pytest.raises(ValueError, match="empty patient identifier"):
            patient_pseudonym(KEY, bad)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        patient_pseudonym(b"short", "12345")


def test_key_comes_from_the_settings_file_and_errors_never_show_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert load_patient_key(Settings()) is None
    path = tmp_path / "patient.key"
    path.write_bytes(KEY + b"\n")
    assert load_patient_key(Settings(patient_key_file=path)) == KEY
    path.write_bytes(b"tiny-secret")
    with pytest.raises(ConfigError, match="at least 16 bytes") as err:
        load_patient_key(Settings(patient_key_file=path))
    assert "tiny-secret" not in str(err.value)
    with pytest.raises(ConfigError, match="cannot read patient_key_file"):
        load_patient_key(Settings(patient_key_file=tmp_path / "missing.key"))


def _hl7_adt() -> ClinicalMessage:
    text = "\r".join(
        [
            "MSH|^~\\&|ADT1|HOSP|EHR|HOSP|20250304100000||ADT^A01|MSG00001|P|2.5",
            "EVN|A01|20250304100000",
            "NTE|1||<script>alert(1)</script>",
            "PID|1||12345^^^HOSP^MR||DOE^JANE||19800101|F",
            "PV1|1|I|ICU^1^1",
        ]
    )
    return message_event(text, source="mllp", locator="adt.hl7", record=1, received=NOW)


def _fhir_access() -> RecordAccess:
    resource = {
        "resourceType": "AuditEvent",
        "id": "ae-1",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "action": "R",
        "recorded": (NOW + timedelta(minutes=5)).isoformat(),
        "agent": [{"who": {"reference": "Practitioner/nosy"}, "requestor": True}],
        "source": {"observer": {"display": "ehr"}},
        "entity": [{"what": {"reference": "Patient/12345"}}],
    }
    return to_access(resource, locator="audit.ndjson", record=1)


def _dicom_study() -> ClinicalMessage:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4.5"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.3.4"
    ds.PatientID = "12345"
    ds.IssuerOfPatientID = "HOSP"
    ds.PatientName = "DOE^JANE"
    ds.Modality = "CT"
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    event = file_event(pe_polyglot(buf.getvalue()), source="pacs", locator="study.dcm", received=NOW)
    assert isinstance(event, ClinicalMessage), event
    return event


def test_hl7_fhir_and_dicom_alerts_name_one_patient_and_correlate_into_one_incident(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    adt, access, study = _hl7_adt(), _fhir_access(), _dicom_study()
    assert adt.fields["patient_authority"] == "HOSP" and study.fields["patient_authority"] == "HOSP"
    context = CareContext(vip_patients=frozenset({"12345"}))
    alerts = (
        HL7Detector(phi_key=KEY, local_authority="HOSP").detect([adt])
        + AccessDetector(context=context, mask_key=KEY, local_authority="HOSP").detect([access])
        + DicomDetector(phi_key=KEY, local_authority="HOSP").detect([study])
    )
    assert {a.detector.split(".")[0] for a in alerts} >= {"hl7", "dicom"} and len(alerts) >= 3
    patients = {e.value for a in alerts for e in a.entities if e.kind is EntityKind.PATIENT}
    assert patients == {patient_pseudonym(KEY, "12345", local_authority="HOSP")}
    assert all(any(e.kind is EntityKind.PATIENT for e in a.entities) for a in alerts)
    incidents = correlate(alerts)
    assert len(incidents) == 1 and set(incidents[0].alert_ids) == {a.id for a in alerts}
    exported = orjson.dumps([to_dict(a) for a in alerts] + [to_dict(incidents[0])])
    for secret in (KEY, KEY.hex().encode(), b"12345", b"DOE"):
        assert secret not in exported
    assert KEY.decode() not in caplog.text and "12345" not in caplog.text


def test_an_other_authoritys_mrn_stays_a_separate_patient() -> None:
    adt = _hl7_adt()
    other = message_event(
        str(adt.fields["text"]).replace("12345^^^HOSP^MR", "12345^^^OTHERHOSP^MR"),
        source="mllp",
        locator="adt2.hl7",
        record=2,
        received=NOW,
    )
    det = HL7Detector(phi_key=KEY, local_authority="HOSP")
    values = {e.value for a in det.detect([adt, other]) for e in a.entities if e.kind is EntityKind.PATIENT}
    assert len(values) == 2


def test_the_demo_snooping_detector_uses_the_same_pseudonym_and_no_raw_id_without_a_key() -> None:
    adt = message_event(
        "MSH|^~\\&|ADT1|HOSP|EHR|HOSP|20250304100000||ADT^A01|MSG2|P|2.5\r"
        "PID|1||MRN100037^^^HOSP^MR||DOE^JANE\rPV1|1|I|ICU||||dr-a^A^B|||||||||VIP",
        source="mllp",
        locator="adt.hl7",
        record=1,
        received=NOW,
    )
    read = RecordAccess(id="r1", ts=NOW, source="sim", user="nurse-b", patient_id="MRN100037")
    keyed = CareRelationshipDetector(patient_key=KEY)
    keyed.fit([adt])
    (alert,) = keyed.detect([read])
    assert [e.value for e in alert.entities if e.kind is EntityKind.PATIENT] == [
        patient_pseudonym(KEY, "Patient/MRN100037")
    ]
    plain = CareRelationshipDetector()
    plain.fit([adt])
    (alert,) = plain.detect([read])
    assert not any(e.kind is EntityKind.PATIENT for e in alert.entities)
    assert "MRN100037" not in orjson.dumps(to_dict(alert)).decode()


def test_scan_hl7_takes_the_key_and_the_authority_from_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from healthsec.cli import app

    key_file = tmp_path / "patient.key"
    key_file.write_bytes(KEY)
    msg = tmp_path / "adt.hl7"
    msg.write_text(str(_hl7_adt().fields["text"]))
    env = {
        "HEALTHSEC_PATIENT_KEY_FILE": str(key_file),
        "HEALTHSEC_PATIENT_ID_AUTHORITY": "HOSP",
        "HEALTHSEC_CONFIG": str(tmp_path / "none.toml"),
    }
    (tmp_path / "none.toml").write_text("")
    result = CliRunner().invoke(app, ["scan", "hl7", str(msg), "--no-store", "--json"], env=env)
    assert result.exit_code == 0, result.output
    alerts = [orjson.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    patients = {e["value"] for a in alerts for e in a["entities"] if e["kind"] == "patient"}
    assert patients == {patient_pseudonym(KEY, "Patient/12345", local_authority="HOSP")}
    assert KEY.decode() not in result.output and "12345^" not in result.output
    key_file.write_bytes(b"short")
    bad = CliRunner().invoke(app, ["scan", "hl7", str(msg), "--no-store"], env=env)
    assert bad.exit_code == 1 and "patient_key_file" in bad.output and "short" not in bad.output
