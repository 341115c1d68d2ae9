"""AuditEvent NDJSON ingestion: bad records become parse errors naming file and line; good ones map fully."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from healthsec.ingest.fhir import AuditEventFileSource, to_access
from healthsec.model import ParseError, RecordAccess


def audit(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": "ae-1",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}],
        "action": "R",
        "recorded": "2024-03-04T09:15:00+01:00",
        "outcome": "0",
        "agent": [
            {
                "who": {"reference": "Practitioner/p-1"},
                "requestor": True,
                "role": [{"text": "nurse"}],
                "network": {"address": "10.1.2.3", "type": "2"},
            }
        ],
        "source": {"observer": {"display": "EHR"}},
        "entity": [{"what": {"reference": "Patient/pat-9"}}, {"what": {"reference": "Observation/o-1"}}],
    }
    base.update(over)
    return base


def test_malformed_lines_are_reported_and_good_ones_kept(tmp_path: Path) -> None:
    path = tmp_path / "audit.ndjson"
    lines = [
        json.dumps(audit(id="ok-1")),
        "{not json",
        json.dumps({"resourceType": "Patient", "id": "x"}),
        json.dumps(audit(id="no-agent", agent=[])),
        json.dumps({k: v for k, v in audit(id="no-recorded").items() if k != "recorded"}),
        "[1, 2]",
        "",
        json.dumps(audit(id="ok-2")),
    ]
    path.write_text("\n".join(lines) + "\n")
    items = list(AuditEventFileSource([path]).read())
    good = [i for i in items if isinstance(i, RecordAccess)]
    bad = [i for i in items if isinstance(i, ParseError)]
    assert [g.provenance.record for g in good if g.provenance] == [1, 8]
    assert [b.record for b in bad] == [2, 3, 4, 5, 6]
    reasons = {b.record: b.reason for b in bad}
    assert "not JSON" in reasons[2]
    assert "resourceType is 'Patient'" in reasons[3]
    assert "agent" in reasons[4]
    assert "recorded" in reasons[5]
    assert "not a JSON object" in reasons[6]
    assert all(b.locator == str(path) for b in bad)
    assert bad[0].describe().startswith(f"{path} record 2:")


def test_missing_file_and_truncated_gzip_do_not_crash(tmp_path: Path) -> None:
    gz = tmp_path / "cut.ndjson.gz"
    full = gzip.compress((json.dumps(audit()) + "\n").encode() * 50)
    gz.write_bytes(full[: len(full) // 2])
    items = list(AuditEventFileSource([tmp_path / "missing.ndjson", gz]).read())
    errors = [i for i in items if isinstance(i, ParseError)]
    assert errors[0].locator.endswith("missing.ndjson")
    assert "cannot open" in errors[0].reason
    assert "unreadable" in errors[-1].reason


def test_mapping_of_a_read() -> None:
    acc = to_access(audit(), locator="x", record=1)
    assert acc.user == "Practitioner/p-1"
    assert acc.role == "nurse"
    assert acc.patient_id == "pat-9"
    assert acc.resource_type == "Observation"
    assert acc.action == "read"
    assert acc.records == 1
    assert acc.workstation == "10.1.2.3"
    assert acc.outcome == "success"
    assert acc.ts.isoformat() == "2024-03-04T08:15:00+00:00"
    assert acc.id == to_access(audit(), locator="y").id  # stable across re-ingestion


def test_search_export_and_counts() -> None:
    search = to_access(
        audit(
            subtype=[{"code": "search-type"}],
            action="E",
            entity=[
                {"what": {"reference": "Patient/p"}},
                {"what": {"reference": "Observation/x"}, "detail": [{"type": "count", "valueString": "37"}]},
            ],
        ),
        locator="x",
    )
    assert (search.action, search.records) == ("search", 37)
    export = to_access(
        audit(
            subtype=[],
            type={"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110106"},
            entity=[{"what": {"reference": "Group/all"}}],
        ),
        locator="x",
    )
    assert export.action == "export"
    assert export.patient_id is None
    assert export.resource_type == "Group"
    ident = to_access(
        audit(
            agent=[
                {
                    "who": {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "999"}},
                    "requestor": True,
                }
            ]
        ),
        locator="x",
    )
    assert ident.user == "http://hl7.org/fhir/sid/us-npi|999"


def test_bundle_lines_yield_each_entry(tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": audit(id="a")}, {"resource": audit(id="b", agent="bad")}],
    }
    path = tmp_path / "b.ndjson"
    path.write_text(json.dumps(bundle) + "\n")
    items = list(AuditEventFileSource([path]).read())
    assert isinstance(items[0], RecordAccess)
    assert isinstance(items[1], ParseError)
    assert items[1].record == 1


def test_json_bundle_file_names_entries(tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": audit(id="a")}, {"resource": {"resourceType": "AuditEvent"}}],
    }
    path = tmp_path / "search.json"
    path.write_text(json.dumps(bundle, indent=2))
    items = list(AuditEventFileSource([path]).read())
    assert isinstance(items[0], RecordAccess)
    assert isinstance(items[1], ParseError)
    assert items[1].record == 1
    assert "invalid AuditEvent" in items[1].reason


def test_parse_errors_carry_no_raw_text(tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    path.write_text('{"resourceType": "AuditEvent", "patient": "Jane Doe\n')
    [err] = list(AuditEventFileSource([path]).read())
    assert isinstance(err, ParseError)
    assert err.raw is None
    assert "Jane" not in err.reason
