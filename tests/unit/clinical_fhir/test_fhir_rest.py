"""The AuditEvent REST router, run standalone with FastAPI's TestClient."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from healthsec.ingest.fhir import create_router
from healthsec.model import RecordAccess


def audit(id: str) -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "id": id,
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
        "action": "R",
        "recorded": "2024-03-04T09:15:00Z",
        "agent": [{"who": {"reference": "Practitioner/p-1"}, "requestor": True}],
        "source": {"observer": {"display": "EHR"}},
        "entity": [{"what": {"reference": "Patient/pat-9"}}],
    }


def client() -> tuple[TestClient, list[RecordAccess]]:
    got: list[RecordAccess] = []

    def on_events(events: Sequence[RecordAccess]) -> None:
        got.extend(events)

    app = FastAPI()
    app.include_router(create_router(on_events))
    return TestClient(app), got


def test_single_auditevent_is_accepted() -> None:
    c, got = client()
    r = c.post("/fhir/AuditEvent", json=audit(id="one"), headers={"content-type": "application/fhir+json"})
    assert r.status_code == 201
    assert r.json()["resourceType"] == "OperationOutcome"
    assert [e.patient_id for e in got] == ["pat-9"]


def test_bundle_with_a_bad_entry_keeps_the_good_ones() -> None:
    c, got = client()
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": audit(id="a")},
            {"resource": {"resourceType": "AuditEvent"}},
            {"resource": audit(id="b")},
        ],
    }
    r = c.post("/fhir", json=bundle)
    assert r.status_code == 422
    issues = r.json()["issue"]
    assert issues[0]["diagnostics"] == "accepted 2 AuditEvent(s)"
    assert issues[1]["expression"] == ["Bundle.entry[1].resource"]
    assert "entry 1: invalid AuditEvent" in issues[1]["diagnostics"]
    assert len(got) == 2


def test_body_that_is_not_json() -> None:
    c, got = client()
    r = c.post("/fhir/AuditEvent", content=b"<xml/>", headers={"content-type": "application/fhir+json"})
    assert r.status_code == 400
    assert "not JSON" in r.json()["issue"][1]["diagnostics"]
    assert got == []
