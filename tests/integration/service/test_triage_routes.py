"""REST routes over the use cases: triage kept and filtered, incident activity, merge/split, mapped errors."""

from __future__ import annotations

import dataclasses

from service_helpers import World

from healthsec.model import Incident, Severity


def test_triage_then_filter_by_verdict(world: World) -> None:
    c, analyst = world.client, world.a.headers("analyst")
    alert_id = world.seeded_a["alert"]
    r = c.post(f"/api/v1/alerts/{alert_id}/triage", json={"verdict": "nope"}, headers=analyst)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "verdict"]
    r = c.post(
        f"/api/v1/alerts/{alert_id}/triage",
        json={"verdict": "true_positive", "comment": "confirmed"},
        headers=analyst,
    )
    assert r.status_code == 200, r.text
    assert r.json()["verdict"] == "true_positive"
    assert r.json()["actor"].startswith("token:")
    shown = c.get(f"/api/v1/alerts/{alert_id}", headers=analyst).json()
    assert shown["verdict"]["comment"] == "confirmed"
    assert shown["incident_id"] == world.seeded_a["incident"]
    assert len(shown["history"]) == 1
    page = c.get(
        "/api/v1/alerts", params={"verdict": "true_positive", "total": "true"}, headers=analyst
    ).json()
    assert [a["id"] for a in page["items"]] == [alert_id]
    assert page["total"] == 1
    assert c.get("/api/v1/alerts", params={"verdict": "maybe"}, headers=analyst).status_code == 422
    assert c.get("/api/v1/alerts", params={"verdict": "untriaged"}, headers=analyst).json()["items"] == []
    r = c.post(
        "/api/v1/alerts/triage", json={"verdict": "false_positive", "alert_ids": [alert_id]}, headers=analyst
    )
    assert r.json() == {"count": 1, "verdict": "false_positive"}
    assert (
        c.get(f"/api/v1/alerts/{alert_id}", headers=analyst).json()["verdict"]["verdict"] == "false_positive"
    )
    # auditors read, they do not triage
    r = c.post(
        f"/api/v1/alerts/{alert_id}/triage", json={"verdict": "fp"}, headers=world.a.headers("auditor")
    )
    assert r.status_code == 403


def test_incident_activity_merge_and_split(world: World) -> None:
    c, analyst = world.client, world.a.headers("analyst")
    # a second incident of the same organisation, stored directly (independent of when detection runs)
    store = world.store.for_org(world.a.org)
    seeded = store.alerts.get(world.seeded_a["alert"])
    assert seeded is not None
    second = dataclasses.replace(seeded, id="al-second", title="second alert")
    store.alerts.add_many([second])
    store.incidents.upsert_many(
        [
            Incident(
                id="in-second",
                title="second incident",
                first_seen=second.ts,
                last_seen=second.ts,
                severity=Severity.MEDIUM,
                score=0.4,
                alert_ids=(second.id,),
            )
        ]
    )
    incidents = c.get("/api/v1/incidents", params={"total": "true"}, headers=analyst).json()
    assert incidents["total"] == len(incidents["items"]) == 2
    inc = world.seeded_a["incident"]
    assert (
        c.post(f"/api/v1/incidents/{inc}/assign", json={"assignee": "ana"}, headers=analyst).status_code
        == 200
    )
    r = c.post(f"/api/v1/incidents/{inc}/comments", json={"text": "on it"}, headers=analyst)
    assert r.status_code == 201
    assert c.post(f"/api/v1/incidents/{inc}/comments", json={"text": ""}, headers=analyst).status_code == 422
    detail = c.get(f"/api/v1/incidents/{inc}", headers=analyst).json()
    assert detail["assignee"] == "ana"
    assert [(h["kind"], h["value"]) for h in detail["activity"]] == [("assign", "ana"), ("comment", "on it")]
    mine = c.get("/api/v1/incidents", params={"assignee": "ana"}, headers=analyst).json()["items"]
    assert [i["id"] for i in mine] == [inc]
    others = [i["id"] for i in incidents["items"] if i["id"] != inc]
    r = c.post("/api/v1/incidents/merge", json={"incident_ids": [inc, others[0]]}, headers=analyst)
    assert r.status_code == 200, r.text
    merged = r.json()
    assert world.seeded_a["alert"] in merged["alert_ids"]
    r = c.post(
        f"/api/v1/incidents/{merged['id']}/split", json={"alert_ids": merged["alert_ids"]}, headers=analyst
    )
    assert r.status_code == 409  # one side would be empty
    assert "cannot split" in r.json()["detail"]
    r = c.post(
        f"/api/v1/incidents/{merged['id']}/split",
        json={"alert_ids": [world.seeded_a["alert"]]},
        headers=analyst,
    )
    assert r.status_code == 200, r.text
    assert r.json()["new"]["alert_ids"] == [world.seeded_a["alert"]]
    r = c.post("/api/v1/incidents/merge", json={"incident_ids": [inc]}, headers=analyst)
    assert r.status_code == 422


def test_partner_policy_is_checked(world: World) -> None:
    c, admin = world.client, world.a.headers("admin")
    bad = {"organisation": "St Mary", "policy": {"colour": "blue"}}
    r = c.put("/api/v1/partners/stmary", json=bad, headers=admin)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "policy", "colour"]  # names the unknown key
    assert c.get("/api/v1/partners", headers=admin).json()["items"] == []
    good = {"organisation": "St Mary", "policy": {"max_tlp": "amber"}}
    saved = c.put("/api/v1/partners/stmary", json=good, headers=admin).json()
    assert saved["policy"]["max_tlp"] == "amber"
    assert saved["organisation"].startswith("identity--")
