"""PHI scrubbing of free text, HL7 v2 and FHIR-shaped content."""

from __future__ import annotations

import pytest

from healthsec.privacy.phi import scrub_obj, scrub_text

CASES = [
    ("Patient John Smith called", ["John Smith"]),
    ("Mrs. Jane Doe was admitted", ["Jane Doe"]),
    ("MRN: 00123456 flagged", ["00123456"]),
    ("medical record number A-7781234", ["A-7781234"]),
    ("DOB: 03/12/1961", ["03/12/1961"]),
    ("born on 12 March 1961", ["12 March 1961"]),
    ("date of birth 1961-03-12", ["1961-03-12"]),
    ("call +1 (555) 123-4567 now", ["555", "123-4567"]),
    ("phone 020 7946 0958", ["7946"]),
    ("mail jane.doe@example.org", ["jane.doe@example.org"]),
    ("SSN 123-45-6789", ["123-45-6789"]),
    ("NHS number 943 476 5919", ["943 476 5919"]),
    ("lives at 221B Baker Street, London NW1 6XE", ["Baker Street", "NW1 6XE"]),
    ("1 Main St, Springfield IL 62701", ["Main St", "62701"]),
    ("see Patient/abc-123", ["abc-123"]),
]


@pytest.mark.parametrize(("text", "secrets"), CASES)
def test_scrub_text_removes(text: str, secrets: list[str]) -> None:
    out = scrub_text(text)
    for s in secrets:
        assert s not in out, out
    assert "[REDACTED" in out


def test_security_content_survives() -> None:
    text = (
        "Flow 10.0.0.5:443 -> 192.168.1.20:8080 at 2026-11-28T15:00:00Z, 4823 bytes, "
        "technique T1059.001, sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert scrub_text(text) == text


def test_hl7_pid_and_nk1_segments() -> None:
    msg = (
        "MSH|^~\\&|ADT|HOSP|||202611281200||ADT^A01|1|P|2.5\r"
        "PID|1||00123456^^^HOSP^MR||Smith^John||19610312|M|||1 Main St^^Springfield^IL^62701\r"
        "NK1|1|Smith^Mary|SPO\rPV1|1|I|WARD1"
    )
    out = scrub_text(msg)
    for s in ("00123456", "Smith", "John", "19610312", "Main St", "Mary"):
        assert s not in out
    assert out.startswith("MSH|^~\\&|ADT|HOSP")
    assert "\rPID|[REDACTED-HL7]\rNK1|[REDACTED-HL7]\rPV1|1|I|WARD1" in out


def test_fhir_and_keys() -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "p1",
                    "name": [{"family": "Smith", "given": ["John"]}],
                    "birthDate": "1961-03-12",
                }
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "subject": {"reference": "Patient/p1", "display": "John Smith"},
                    "valueQuantity": {"value": 72, "unit": "bpm"},
                }
            },
        ],
        "x_note": {"patient_id": "P-991", "email": "a@b.org", "name": "Suspicious DICOM C-STORE"},
        "count": None,
    }
    out = scrub_obj(bundle)
    text = repr(out)
    for s in ("Smith", "John", "1961", "p1", "P-991", "a@b.org"):
        assert s not in text
    assert out["entry"][0]["resource"] == {"resourceType": "Patient", "id": "[REDACTED]"}
    assert out["entry"][1]["resource"]["valueQuantity"] == {"value": 72, "unit": "bpm"}
    assert out["x_note"]["name"] == "Suspicious DICOM C-STORE"  # a STIX-style name is not a person
    assert out["count"] is None
    assert bundle["entry"][0]["resource"]["birthDate"] == "1961-03-12"  # input untouched


def test_known_values() -> None:
    out = scrub_text("workstation of zorblat logged in", known=["Zorblat"])
    assert out == "workstation of [REDACTED] logged in"


def test_hl7_segment_quoted_inside_other_text() -> None:
    text = "fields={'segment': 'PID|1||Q-99812^^^HOSP^MR||Quibblesworth^Johnathan||19610312', 'ok': 1}"
    out = scrub_text(text)
    for s in ("Q-99812", "Quibblesworth", "19610312"):
        assert s not in out
    assert out.endswith("'ok': 1}")
    assert scrub_text("RAPID|x and PIDX|y") == "RAPID|x and PIDX|y"  # not segment names


@pytest.mark.parametrize("hostile", ["A" * 100_000, "a@" * 30_000, "1-" * 30_000, "patient " * 20_000])
def test_long_tokens_do_not_blow_up(hostile: str) -> None:
    """A base64 run or a crafted line must stay linear (no catastrophic backtracking)."""
    out = scrub_text(hostile + " x@example.org")
    assert out.endswith("[REDACTED-EMAIL]")


def test_hl7_person_values_removed_where_the_message_repeats_them() -> None:
    msg = (
        "MSH|^~\\&|LAB|HOSP|||202611281200||ORU^R01|1|P|2.5.1\r"
        "PID|1||QX-99812^^^HOSP^MR||Quibblesworth^Johnathan||19610312|M\r"
        "NTE|1||Specimen of Johnathan QUIBBLESWORTH, id QX-99812, labelled at the bedside\r"
        "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L"
    )
    out = scrub_text(msg)
    for s in ("QX-99812", "Quibblesworth", "Johnathan", "19610312"):
        assert s.lower() not in out.lower()
    assert out.startswith("MSH|^~\\&|LAB|HOSP|")  # the assigning authority is not a person's value
    assert "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L" in out
