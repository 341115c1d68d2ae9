"""The PHI scrubber on public synthetic clinical data: Synthea FHIR patients and CDC HL7 v2 test messages."""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from healthsec.privacy.phi import person_values, scrub_obj, scrub_text

SYNTHEA = "fhir-bulk-synthea-10-patients"


def _ndjson(folder: Path, name: str) -> list[dict[str, Any]]:
    with gzip.open(folder / f"{name}.000.ndjson.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _present(value: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text, re.IGNORECASE) is not None


@pytest.fixture(scope="module")
def patient_bundles(shared_data: Path) -> list[dict[str, Any]]:
    """Per patient, a Bundle as ``Patient/$everything`` returns it: the patient, encounters and notes
    (notes decoded from base64 to text, as a viewer renders them; the encounters subset keeps it quick)."""
    folder = shared_data / SYNTHEA
    patients = {p["id"]: p for p in _ndjson(folder, "Patient")}
    related: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rtype, limit in (("Encounter", 20), ("DocumentReference", 20)):
        for res in _ndjson(folder, rtype):
            pid = str(res.get("subject", {}).get("reference", "")).removeprefix("Patient/")
            if pid in patients and sum(r["resourceType"] == rtype for r in related[pid]) < limit:
                if rtype == "DocumentReference":
                    for c in res.get("content", []):
                        att = c.get("attachment", {})
                        att["x_note_text"] = base64.b64decode(att["data"]).decode("utf-8")
                related[pid].append(res)
    return [
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in [patients[pid], *related[pid]]],
        }
        for pid in patients
    ]


def test_synthea_patients_leave_no_identifying_value(patient_bundles: list[dict[str, Any]]) -> None:
    checked = 0
    for bundle in patient_bundles:
        values = {v for v in person_values(bundle) if len(v) >= 4}
        before = json.dumps(bundle)
        present = [v for v in values if _present(v, before)]
        assert present, "the fixture must hold the patient's identifiers"
        after = json.dumps(scrub_obj(bundle))
        assert [v for v in present if _present(v, after)] == []
        checked += len(present)
    assert checked > 100
    assert len(patient_bundles) == 13


def test_synthea_notes_keep_their_clinical_content(patient_bundles: list[dict[str, Any]]) -> None:
    note = next(
        e["resource"]
        for e in patient_bundles[0]["entry"]
        if e["resource"]["resourceType"] == "DocumentReference"
    )
    scrubbed = scrub_obj({"resourceType": "Bundle", "entry": [e for e in patient_bundles[0]["entry"]]})
    text = next(
        e["resource"]["content"][0]["attachment"]
        for e in scrubbed["entry"]
        if e["resource"]["resourceType"] == "DocumentReference"
    )
    assert text["data"] == "[REDACTED-ATTACHMENT]"
    assert "# Chief Complaint" in text["x_note_text"]
    assert note["content"][0]["attachment"]["x_note_text"].count("\n") == text["x_note_text"].count("\n")


def _component(field: str, n: int) -> str:
    parts = field.split("~")[0].split("^")
    return parts[n].strip() if n < len(parts) else ""


def _pid_values(message: str) -> set[str]:
    """Patient id (PID-3.1), family and given name (PID-5.1/.2), birth date (PID-7), street (PID-11.1)."""
    out: set[str] = set()
    for seg in re.split(r"[\r\n]+", message):
        f = seg.split("|")
        if f[0] != "PID" or len(f) < 8:
            continue
        values = [_component(f[3], 0), _component(f[5], 0), _component(f[5], 1), f[7][:8]]
        if len(f) > 11:
            values.append(_component(f[11], 0))
        out.update(v for v in values if len(v) >= 3)
    return out


def test_cdc_hl7_pid_values_are_removed(shared_data: Path) -> None:
    files = sorted((shared_data / "hl7v2-fhir-samples-cdc" / "examples").rglob("*.hl7"))
    assert len(files) > 100
    checked = 0
    for path in files:
        raw = path.read_text(encoding="utf-8", errors="replace")
        values = _pid_values(raw)
        if not values:
            continue
        after = scrub_text(raw)
        assert [v for v in values if v in after and v not in _non_pid_text(raw)] == [], path.name
        assert after.startswith("MSH") == raw.startswith("MSH")
        checked += 1
    assert checked > 50


def _non_pid_text(message: str) -> str:
    """Everything outside PID/NK1 segments (a PID value repeated in OBX results is checked separately)."""
    return "\n".join(s for s in re.split(r"[\r\n]+", message) if not s.startswith(("PID|", "NK1|")))
