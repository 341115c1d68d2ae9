"""Cases over the REST API: roles, organisation scoping, close rules, approvals, drafts, what-if clocks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from healthsec.api.app import create_app
from healthsec.config import Settings
from healthsec.model import Alert, Asset, Entity, EntityKind, EntityRole, Incident, Severity
from healthsec.model.assets import Criticality
from healthsec.store import Store
from healthsec.store.auth import AuthStore

T0 = datetime(2027, 3, 3, 14, 30, tzinfo=UTC)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    store = Store.open(str(tmp_path / "api.db"), "north")
    auth = AuthStore(store.engine)
    headers: dict[str, dict[str, str]] = {}
    for org in ("north", "south"):
        auth.create_org(org)
        for role in ("analyst", "auditor"):
            token = auth.create_token(org, role, f"{role}-{org}")[1]
            headers[f"{org}-{role}"] = {"Authorization": f"Bearer {token}"}
    store.assets.upsert_many(
        [
            Asset(
                id="pump-13",
                name="pump-13",
                role="infusion_pump",
                zone="devices",
                criticality=Criticality.LIFE_SUSTAINING,
            )
        ]
    )
    ents = (Entity(EntityKind.IP, "10.20.1.250"), Entity(EntityKind.DEVICE, "pump-13", EntityRole.TARGET))
    store.alerts.add_many(
        [
            Alert(
                id="al-1",
                ts=T0,
                detector="iomt-telemetry",
                detector_version="1",
                title="spoofed",
                score=1.0,
                severity=Severity.CRITICAL,
                explanation="implausible",
                entities=ents,
                tactics=("impair-process-control",),
            )
        ]
    )
    store.incidents.upsert_many(
        [
            Incident(
                id="inc-1",
                title="pump spoofing",
                first_seen=T0,
                last_seen=T0,
                severity=Severity.CRITICAL,
                score=1.0,
                alert_ids=("al-1",),
                entities=ents,
                tactics=("impair-process-control",),
            )
        ]
    )
    settings = Settings(db=str(tmp_path / "api.db"), org="north", jurisdictions=("eu:DE",))
    with TestClient(create_app(settings, store=store)) as c:
        yield c, headers
    store.close()


def test_case_flow_over_the_api(client: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    c, h = client
    assert (
        c.post("/api/v1/cases", json={"incidents": ["inc-1"]}, headers=h["north-auditor"]).status_code == 403
    )
    r = c.post(
        "/api/v1/cases", json={"incidents": ["inc-1"], "significant": True}, headers=h["north-analyst"]
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert c.get(f"/api/v1/cases/{cid}", headers=h["south-analyst"]).status_code == 404  # other org
    r = c.post(
        f"/api/v1/cases/{cid}/close", json={"resolution": "fixed", "lessons": ""}, headers=h["north-analyst"]
    )
    assert r.status_code == 409
    assert "lessons-learnt" in r.json()["detail"]
    r = c.post(
        f"/api/v1/cases/{cid}/tasks",
        json={"title": "bedside check", "due": "2027-03-03T15:00"},
        headers=h["north-analyst"],
    )
    assert r.status_code == 422  # naive time refused
    r = c.post(
        f"/api/v1/cases/{cid}/aware", json={"at": "2027-03-03T15:00:00+01:00"}, headers=h["north-analyst"]
    )
    assert r.json()["started"] == 4  # NIS2 only: significant, no personal data
    due = {x["obligation"]: x["due"] for x in r.json()["clocks"]}
    assert due["early_warning"] == "2027-03-04T14:00:00Z"
    shown = c.get(f"/api/v1/cases/{cid}", headers=h["north-auditor"]).json()
    assert [t["actor"].startswith("token:") for t in shown["timeline"]] == [True, True]
    md = c.get(f"/api/v1/cases/{cid}/drafts/nis2", headers=h["north-analyst"])
    assert md.status_code == 200
    assert md.text.startswith("# Significant incident")
    pdf = c.get(f"/api/v1/cases/{cid}/drafts/nis2?format=pdf", headers=h["north-analyst"])
    assert pdf.content.startswith(b"%PDF")
    r = c.post(
        f"/api/v1/cases/{cid}/close",
        json={"resolution": "fixed", "lessons": "segment VLAN"},
        headers=h["north-analyst"],
    )
    assert r.json()["status"] == "closed"


def test_playbooks_over_the_api_wait_for_approval(
    client: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    c, h = client
    r = c.post("/api/v1/playbooks/run", json={}, headers=h["north-analyst"])
    (run,) = r.json()["runs"]
    assert run["playbook"] == "device_spoofing"
    assert run["status"] == "done"
    case = c.get(f"/api/v1/cases/{run['case_id']}", headers=h["north-analyst"]).json()
    pump = next(x for x in case["containment"] if x["target"] == "pump-13")
    assert pump["status"] == "awaiting_approval"
    assert c.post(f"/api/v1/containment/{pump['id']}/approve", headers=h["north-auditor"]).status_code == 403
    r = c.post(f"/api/v1/containment/{pump['id']}/reject", json={"reason": ""}, headers=h["north-analyst"])
    assert r.status_code == 409
    r = c.post(f"/api/v1/containment/{pump['id']}/approve", headers=h["north-analyst"])
    assert r.json()["status"] == "approved"
    assert r.json()["decided_by"]


def test_what_if_deadlines(client: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    c, h = client
    q = "aware_at=2026-12-31T22:00%2B01:00&jurisdiction=us&individuals=700&residents=CA=600"
    rows = c.get(f"/api/v1/deadlines?{q}", headers=h["north-auditor"]).json()
    assert {r["obligation"]: r["due"] for r in rows}["media:CA"] == "2027-03-01"
    bad = c.get(
        "/api/v1/deadlines?aware_at=2026-12-31T22:00%2B01:00&jurisdiction=mars", headers=h["north-auditor"]
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "jurisdiction", 0]  # the published pattern
    over = c.get(
        f"/api/v1/deadlines?{q.replace('individuals=700', 'individuals=500')}", headers=h["north-auditor"]
    )
    assert over.status_code == 409  # 600 residents of 500 individuals: the facts contradict each other


def test_another_organisation_reaches_none_of_a_case(
    client: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    c, h = client
    r = c.post(
        "/api/v1/cases", json={"incidents": ["inc-1"], "significant": True}, headers=h["north-analyst"]
    )
    cid = r.json()["id"]
    south = h["south-analyst"]
    bodies = {
        "attachments": {"name": "x", "ref": "s3://x"},
        "aware": {},
        "close": {"resolution": "fixed", "lessons": "none"},
        "comments": {"text": "hi"},
        "incidents": {"incidents": ["inc-1"]},
        "observables": {"kind": "ip", "value": "10.0.0.1"},
        "status": {"status": "contained"},
        "tasks": {"title": "t"},
    }
    for action, body in bodies.items():
        resp = c.post(f"/api/v1/cases/{cid}/{action}", json=body, headers=south)
        assert resp.status_code == 404, (action, resp.status_code, resp.text)
    assert c.get(f"/api/v1/cases/{cid}/drafts/gdpr", headers=south).status_code == 404
    r = c.post(f"/api/v1/cases/{cid}/clocks/gdpr.authority_notification/met", json={}, headers=south)
    assert r.status_code == 404, r.text
    assert cid not in {x["id"] for x in c.get("/api/v1/cases", headers=south).json()["items"]}
    assert all(
        x.get("case_id") != cid for x in c.get("/api/v1/clocks", headers=south).json().get("items", [])
    )
