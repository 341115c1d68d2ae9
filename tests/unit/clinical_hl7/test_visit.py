"""Care relationships from real HL7 ADT (PV1, ROL) and FHIR Encounters: bad input first, then CDC/Synthea."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from healthsec.detect.clinical.baseline import CareRelationshipDetector
from healthsec.ingest.fhir.bundles import load_directory
from healthsec.ingest.hl7 import HL7FileSource, message_event
from healthsec.model import ClinicalMessage, RecordAccess

NOW = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
MSH = "MSH|^~\\&|ADT1|HOSP|EHR|HOSP|20250304100000||ADT^{t}|C{n}|P|2.5.1"


def adt(body: str, trigger: str = "A01", n: int = 1) -> ClinicalMessage:
    text = MSH.format(t=trigger, n=n) + "\rPID|1||{pid}^^^HOSP^MR||DOE^JANE\r".format(pid="P1") + body
    return message_event(text, source="t", locator="mem", record=n, received=NOW)


def reads(user: str, patients: list[str]) -> list[RecordAccess]:
    return [
        RecordAccess(id=f"r-{user}-{p}", ts=NOW.replace(minute=10 + i), source="t", user=user, patient_id=p)
        for i, p in enumerate(patients)
    ]


def test_truncated_pv1_and_providers_without_an_id_are_read_without_guessing() -> None:
    short = adt("PV1|1")
    assert short.fields["errors"] == [] and short.fields["location"] is None
    assert short.fields["care_providers"] == []
    nameless = adt("PV1|1|I|ICU||||^NOBODY^NO~D7^DOC^A|||||||||N")
    assert [p["id"] for p in nameless.fields["care_providers"]] == ["D7"]  # type: ignore[index,union-attr]
    assert nameless.fields["unidentified_providers"] == 1
    assert nameless.fields["vip"] is False and nameless.fields["vip_indicator"] == "N"


def test_message_without_a_visit_gets_no_visit_fields() -> None:
    oru = message_event(
        "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20250304100000||ORU^R01|C9|P|2.5.1\rPID|1||P1\rOBX|1|NM|x||5",
        source="t",
        locator="mem",
        record=1,
        received=NOW,
    )
    assert "care_providers" not in oru.fields and "location" not in oru.fields


def test_cdc_adt_samples_give_ward_attending_and_class(shared_data: Path) -> None:
    folder = shared_data / "hl7v2-fhir-samples-cdc" / "examples"
    events = [
        e
        for e in HL7FileSource(
            [folder / "Other" / "001_ADT_A01.hl7", folder / "MN" / "005_MN_ADT_A01.hl7"]
        ).read()
        if isinstance(e, ClinicalMessage)
    ]
    got = {e.patient_id: e.fields for e in events}
    assert got["PATID1234"]["location"] == "2000" and got["PATID1234"]["patient_class"] == "I"
    assert got["PATID1234"]["care_providers"] == [
        {"id": "004777", "role": "attending", "authority": None, "action": "AD"}
    ]
    assert [p["id"] for p in got["11102779"]["care_providers"]] == ["00909"]  # type: ignore[index,union-attr]


def test_care_detector_learns_from_real_adt_and_a_rol_delete_ends_the_relationship(shared_data: Path) -> None:
    sample = shared_data / "hl7v2-fhir-samples-cdc" / "examples" / "Other" / "001_ADT_A01.hl7"
    (real,) = [e for e in HL7FileSource([sample]).read() if isinstance(e, ClinicalMessage)]
    det = CareRelationshipDetector(min_accesses=1)
    det.fit([real])
    assert det.detect(reads("004777", ["PATID1234"])) == []  # the attending doctor
    assert len(det.detect(reads("someone", ["PATID1234"]))) == 1

    det = CareRelationshipDetector(min_accesses=1)  # no ward given: only the named relationship counts
    det.fit([adt("PV1|1|I|\rROL|1|AD|NUR^Nurse^L|n1", n=1)])
    assert det.detect(reads("n1", ["P1"])) == []
    det.detect([adt("PV1|1|I|\rROL|1|DE|NUR^Nurse^L|n1", trigger="A08", n=2)])
    assert len(det.detect(reads("n1", ["P1"]))) == 1


def test_vip_indicator_alerts_on_the_first_unrelated_read() -> None:
    det = CareRelationshipDetector()
    det.fit([adt("PV1|1|I|ICU||||D1^DOC^A|||||||||VIP")])
    (alert,) = det.detect(reads("stranger", ["P1"]))
    assert alert.features["vip_records"] == 1.0


def test_fhir_encounter_participants_are_care_relationships(shared_data: Path) -> None:
    directory = load_directory([shared_data / "fhir-bulk-synthea-10-patients"])
    ctx = directory.context
    user, patients = max(ctx.care.items(), key=lambda kv: len(kv[1]))
    mine = sorted(patients)[:5]
    det = CareRelationshipDetector(min_accesses=1, context=ctx)
    det.fit([])
    assert det.detect(reads(user, mine)) == []
    others = [p for p in directory.patients if p not in patients]
    assert others and len(det.detect(reads(user, others))) == 1
