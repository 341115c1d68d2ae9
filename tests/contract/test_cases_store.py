"""Cases, playbooks, outbox and clocks on SQLite and PostgreSQL: every change recorded, nothing run twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from healthsec.model import Alert, Asset, Entity, EntityKind, EntityRole, Incident, RecordAccess, Severity
from healthsec.model.assets import Criticality
from healthsec.respond.playbook import builtin, load_text
from healthsec.services.breach import clock_rows, draft, mark_met, refresh, start_clocks
from healthsec.services.cases import CaseError, CaseService, ResponseConfig
from healthsec.services.containment import decide, rollback
from healthsec.services.playbooks import PlaybookEngine
from healthsec.store import Store
from healthsec.store.cases import cases

T0 = datetime(2027, 3, 3, 19, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _insider(store: Store, n_patients: int = 3) -> Incident:
    events = [
        RecordAccess(
            id=f"ev-{i}", ts=T0 + timedelta(minutes=i), source="fhir", user="n011", patient_id=f"MRN10{i:04d}"
        )
        for i in range(n_patients)
    ]
    store.events.add_many(events)
    ents = (
        Entity(EntityKind.USER, "n011"),
        Entity(EntityKind.HOST, "ws-011"),
        *(Entity(EntityKind.PATIENT, e.patient_id or "", EntityRole.TARGET) for e in events),
    )
    alert = Alert(
        id="al-insider",
        ts=T0,
        detector="clinical.access.care-relationship",
        detector_version="1",
        title="reads without care relationship",
        score=0.9,
        severity=Severity.HIGH,
        explanation="no care relationship",
        evidence=tuple(e.id for e in events),
        entities=ents,
        techniques=("T1213",),
        tactics=("collection",),
    )
    store.alerts.add_many([alert])
    inc = Incident(
        id="inc-insider",
        title="n011 reads records",
        first_seen=T0,
        last_seen=T0 + timedelta(minutes=n_patients),
        severity=Severity.HIGH,
        score=0.9,
        alert_ids=(alert.id,),
        entities=ents,
        techniques=("T1213",),
        tactics=("collection",),
    )
    store.incidents.upsert_many([inc])
    return inc


def _pump_incident(store: Store) -> Incident:
    store.assets.upsert_many(
        [
            Asset(
                id="pump-13",
                name="pump-13",
                role="infusion_pump",
                zone="devices",
                criticality=Criticality.LIFE_SUSTAINING,
            ),
            Asset(id="ws-9", name="ws-9", role="workstation", zone="clinical", ip="10.10.1.9"),
        ]
    )
    ents = (Entity(EntityKind.IP, "10.10.1.9"), Entity(EntityKind.DEVICE, "pump-13", EntityRole.TARGET))
    alert = Alert(
        id="al-pump",
        ts=T0,
        detector="iomt-telemetry",
        detector_version="1",
        title="spoofed readings",
        score=0.9,
        severity=Severity.CRITICAL,
        explanation="impossible physiology",
        entities=ents,
        tactics=("impair-process-control",),
    )
    store.alerts.add_many([alert])
    inc = Incident(
        id="inc-pump",
        title="pump spoofing",
        first_seen=T0,
        last_seen=T0,
        severity=Severity.CRITICAL,
        score=0.9,
        alert_ids=(alert.id,),
        entities=ents,
        tactics=("impair-process-control",),
    )
    store.incidents.upsert_many([inc])
    return inc


def _svc(store: Store, **cfg: Any) -> CaseService:
    config = ResponseConfig(
        console_url="https://soc.example/console", jurisdictions=("eu:DE", "us"), channels=("webhook",), **cfg
    )
    return CaseService(store, config, Clock())


def test_case_lifecycle_records_every_change_with_who_and_when(store: Store) -> None:
    inc = _insider(store)
    svc = _svc(store)
    cid, new = svc.open([inc.id], "alice", title="snooping", data_categories=["health"])
    assert new
    svc.add_task(cid, "review accesses", "alice", owner="privacy-officer", due=T0 + timedelta(days=1))
    svc.add_observable(cid, "hash", "d41d8cd98f00b204e9800998ecf8427e", "bob")
    svc.comment(cid, "called the line manager", "bob")
    svc.attach(cid, "export of accesses", "evidence://case/accesses.csv", "bob")
    svc.set_status(cid, "investigating", "alice")
    with pytest.raises(CaseError, match="lessons-learnt note"):
        svc.close(cid, "account suspended", "  ", "alice")
    with pytest.raises(CaseError, match="no incident nope"):
        svc.add_incidents(cid, ["nope"], "alice")
    svc.close(cid, "account suspended", "enforce break-glass reasons", "alice")
    with pytest.raises(CaseError, match="is closed"):
        svc.comment(cid, "late", "bob")
    shown = svc.show(cid)
    assert shown["status"] == "closed"
    assert shown["resolution"] == "account suspended"
    assert [t["title"] for t in shown["tasks"]] == ["review accesses"]
    assert shown["attachments"][0]["ref"] == "evidence://case/accesses.csv"
    actions = [(t["actor"], t["action"]) for t in shown["timeline"]]
    assert actions == [
        ("alice", "case.opened"),
        ("alice", "task.added"),
        ("bob", "observable.added"),
        ("bob", "comment.added"),
        ("bob", "attachment.added"),
        ("alice", "case.status"),
        ("alice", "case.closed"),
    ]
    patients = [o["value"] for o in shown["observables"] if o["kind"] == "patient"]
    assert len(patients) == 3
    assert all(p.startswith("pt-") and "MRN" not in p for p in patients)


def test_outbox_messages_carry_no_phi_and_link_to_the_console(store: Store) -> None:
    inc = _insider(store)
    svc = _svc(store)
    cid, _ = svc.open([inc.id], "alice")
    msgs = cases(store).outbox()
    assert [m["body"]["event"] for m in msgs] == ["case.opened"]
    text = repr(msgs[0]["body"])
    assert "MRN" not in text
    assert "n011" not in text
    assert msgs[0]["body"]["link"] == f"https://soc.example/console/cases/{cid}"


def test_playbooks_open_cases_start_clocks_and_wait_for_approval(store: Store) -> None:
    insider, pump = _insider(store, n_patients=4), _pump_incident(store)
    svc = _svc(store)
    engine = PlaybookEngine(svc, builtin())
    runs = engine.on_incidents([insider, pump])
    assert sorted((r["playbook"], r["status"]) for r in runs) == [
        ("device_spoofing", "done"),
        ("insider_snooping", "done"),
    ]
    again = engine.on_incidents([insider, pump])  # idempotent: nothing new
    assert [r["id"] for r in again] == [r["id"] for r in runs]
    assert cases(store).count() == 2
    by_book = {r["playbook"]: r["case_id"] for r in runs}
    spoof = svc.show(by_book["device_spoofing"])
    pump_req = next(c for c in spoof["containment"] if c["target"] == "pump-13")
    assert pump_req["requires_approval"] is True  # the playbook said auto; the pump is life-sustaining
    assert pump_req["status"] == "awaiting_approval"
    assert "patient-connected" in pump_req["approval_reason"]
    approved = decide(svc, pump_req["id"], "dr-house", approve=True)
    assert approved["status"] == "approved"
    assert approved["executed"] is False
    with pytest.raises(ValueError, match="not awaiting approval"):
        decide(svc, pump_req["id"], "dr-house", approve=True)
    with pytest.raises(ValueError, match="needs a reason"):
        rollback(svc, pump_req["id"], "dr-house", "")
    undone = rollback(svc, pump_req["id"], "dr-house", "pump replaced")
    assert undone["status"] == "rolled_back"
    assert undone["rollback"] == ["DELETE <nac-api-url>/quarantine/pump-13 {}"]
    with pytest.raises(ValueError, match="only an approved one is undone"):
        rollback(svc, pump_req["id"], "dr-house", "again")
    snoop = svc.show(by_book["insider_snooping"])
    clocks = {(c["regime"], c["obligation"]): c for c in snoop["clocks"]}
    aware = snoop["aware_at"]
    assert aware is not None
    assert clocks[("gdpr", "authority_notification")]["state"] == "due"
    assert ("hipaa", "hhs_annual_log") in clocks  # 4 patients < 500
    assert clocks[("hipaa", "hhs_annual_log")]["due"] == "2028-02-29"
    md = draft(svc, by_book["insider_snooping"], "gdpr")
    assert "approximately 4 people" in md
    assert "MRN" not in md
    assert "never" not in md or "Nothing is sent to an authority automatically" in md


def test_clock_met_late_and_warnings_before_expiry(store: Store) -> None:
    inc = _insider(store)
    svc = _svc(store)
    cid, _ = svc.open([inc.id], "alice", data_categories=["health"])
    assert start_clocks(svc, cid, "alice", aware_at=T0) > 0
    assert start_clocks(svc, cid, "alice", aware_at=T0 + timedelta(days=1)) == 0  # first awareness stands
    assert mark_met(svc, cid, "gdpr.authority_notification", "dpo", at=T0 + timedelta(hours=10)) == "met"
    with pytest.raises(ValueError, match="has no clock"):
        mark_met(svc, cid, "nis2.early_warning", "dpo")  # no significant incident, no NIS2 clock
    counts = refresh(svc, now=T0 + timedelta(days=55))
    assert counts["warned"] >= 1
    assert refresh(svc, now=T0 + timedelta(days=55))["warned"] == 0  # warned once
    assert refresh(svc, now=T0 + timedelta(days=70))["late"] >= 1
    rows = {r["obligation"]: r["state"] for r in clock_rows(svc, cid, now=T0 + timedelta(days=70))}
    assert rows["individuals"] == "late"
    assert rows["authority_notification"] == "met"
    events = [m["body"]["event"] for m in cases(store).outbox()]
    assert "clock.due_soon" in events
    assert "clock.late" in events


RESUMABLE = """\
name: resumable
trigger:
  detectors: [clinical.access.care-relationship]
steps:
  - kind: open_case
    start_clocks: false
  - kind: add_task
    title: first
  - kind: enrich
    source: attack
  - kind: add_task
    title: last
"""


def test_a_failing_step_is_shown_and_a_restart_resumes_without_repeating(store: Store) -> None:
    inc = _insider(store)
    svc = _svc(store)
    calls: list[str] = []
    engine = PlaybookEngine(svc, [load_text(RESUMABLE)])
    real_task = engine.handlers["add_task"]

    def counting(*args: Any) -> dict[str, Any]:
        calls.append(args[3]["title"])
        return real_task(*args)

    def broken(*args: Any) -> dict[str, Any]:
        raise RuntimeError("ATT&CK copy unreadable")

    engine.handlers.update(add_task=counting, enrich=broken)
    (run,) = engine.on_incidents([inc])
    assert run["status"] == "failed"
    assert "step 3 (enrich) failed: RuntimeError: ATT&CK copy unreadable" in run["error"]
    shown = svc.show(run["case_id"])
    assert "not done yet: 3. enrich, 4. add_task" in shown["comments"][0]["text"]
    assert shown["timeline"][-1]["action"] == "playbook.failed"
    fixed: Callable[..., dict[str, Any]] = lambda *a: {"source": "attack", "lines": 0}  # noqa: E731
    engine.handlers["enrich"] = fixed
    (run,) = engine.on_incidents([inc])
    assert run["status"] == "done"
    assert calls == ["first", "last"]  # "first" ran once, before the failure; never again
    assert [t["title"] for t in svc.show(run["case_id"])["tasks"]] == ["first", "last"]
    steps = cases(store).steps(run["id"])
    assert [s["status"] for s in steps] == ["done"] * 4


LOOPY = """\
name: {name}
trigger:
  event: case_updated
  min_severity: low
steps:
  - kind: update_case
    severity: critical
"""


def test_loop_protection_stops_a_playbook_that_triggers_itself(store: Store) -> None:
    inc = _insider(store)
    svc = _svc(store)
    opener = load_text(
        "name: opener\ntrigger:\n  detectors: [clinical.access.care-relationship]\nsteps:\n"
        "  - kind: open_case\n    start_clocks: false\n  - kind: update_case\n    status: investigating\n"
    )
    engine = PlaybookEngine(
        svc, [opener, load_text(LOOPY.format(name="ping")), load_text(LOOPY.format(name="pong"))]
    )
    (run,) = engine.on_incidents([inc])
    assert run["status"] == "done"
    runs = cases(store).runs(case_id=run["case_id"])
    stopped = [r for r in runs if r["status"] == "stopped_loop"]
    assert stopped
    assert all("loop protection" in (r["error"] or "") for r in stopped)
    done_chains = [r["body"]["chain"] for r in runs if r["status"] == "done"]
    assert all(len(set(c)) == len(c) <= engine.max_chain for c in done_chains)
    actions = [t["action"] for t in svc.show(run["case_id"])["timeline"]]
    assert "playbook.loop_stopped" in actions


SHARING = """\
name: sharing
trigger:
  detectors: [clinical.access.care-relationship]
steps:
  - kind: open_case
    start_clocks: false
  - kind: share
    partner: community
    tlp: green
"""


def test_share_step_leaves_only_through_the_exit_door(
    store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from healthsec.config import Settings

    inc = _insider(store)
    svc = _svc(store)
    monkeypatch.delenv("HEALTHSEC_SHARING_KEY", raising=False)
    (run,) = PlaybookEngine(svc, [load_text(SHARING)]).on_incidents([inc])
    assert run["status"] == "failed"  # no community key: nothing leaves, the case says why
    assert "step 2 (share) failed: KeyMissing" in run["error"]
    key = tmp_path / "sharing.key"
    key.write_text("ab" * 32 + "\n")  # the settings' sharing_secret_file, as TAXII and `share` read it
    settings = Settings(db="unused.db", org=store.org, sharing_secret_file=key)
    svc.config = ResponseConfig.from_settings(settings, store.org)
    engine = PlaybookEngine(svc, [load_text(SHARING)])
    (run,) = engine.on_incidents([inc])
    assert run["status"] == "done"
    out = cases(store).steps(run["id"])[1]["output"]
    assert out["partner"] == "community"
    assert out["cleared"] > 0
    assert out["published"] > 0


def test_pipeline_hook_opens_cases_at_event_time(store: Store) -> None:
    from healthsec.config import Settings
    from healthsec.services.playbooks import on_incidents

    inc = _insider(store)
    settings = Settings(db="unused.db", org=store.org, jurisdictions=("eu",))
    (run,) = on_incidents(store, [inc], settings, now=T0)
    case = cases(store).get(run["case_id"])
    assert case is not None
    assert case["opened_at"] == T0
    assert case["aware_at"] == T0
    assert on_incidents(store, [inc], settings, now=T0)[0]["id"] == run["id"]  # idempotent


def test_awareness_report_compares_with_the_community(store: Store, tmp_path: Any) -> None:
    import json

    from healthsec.services.awareness import gather, write_report

    inc = _insider(store)
    svc = _svc(store)
    svc.open([inc.id], "alice", data_categories=["health"], start_clocks=True)
    agg = tmp_path / "community.json"
    agg.write_text(
        json.dumps({"type": "healthsec-aggregate", "incidents_by_technique": {"T1213": 4.6, "T1486": 2}})
    )
    data = gather(svc, T0 - timedelta(days=1), T0 + timedelta(days=1), [agg])
    assert data.incidents == 1
    assert dict(data.by_tactic) == {"collection": 1}
    assert {c["technique"]: (c["ours"], c["community"]) for c in data.community} == {
        "T1213": (1, 4.6),
        "T1486": (0, 2.0),
    }
    assert any(c["obligation"] == "authority_notification" for c in data.open_clocks)
    html_path, pdf_path = write_report(
        svc, tmp_path / "rep", T0 - timedelta(days=1), T0 + timedelta(days=1), [agg]
    )
    assert "T1486 community" in html_path.read_text()
    assert pdf_path.read_bytes().startswith(b"%PDF")
    (tmp_path / "bad.json").write_text('{"type": "stix"}')
    with pytest.raises(ValueError, match="not a healthsec-aggregate document"):
        gather(svc, None, None, [tmp_path / "bad.json"])


def test_a_target_no_adapter_accepts_is_refused_on_the_case_and_the_others_go_on(store: Store) -> None:
    ents = (
        Entity(EntityKind.USER, "HOSP\\SYSTEM"),
        Entity(EntityKind.USER, "bad;user"),
        Entity(EntityKind.USER, "HOSP\\n012"),
    )
    alert = Alert(
        id="al-x",
        ts=T0,
        detector="clinical.access.care-relationship",
        detector_version="1",
        title="t",
        score=1.0,
        severity=Severity.HIGH,
        explanation="e",
        entities=ents,
    )
    store.alerts.add_many([alert])
    inc = Incident(
        id="inc-x",
        title="x",
        first_seen=T0,
        last_seen=T0,
        severity=Severity.HIGH,
        score=1.0,
        alert_ids=("al-x",),
        entities=ents,
    )
    store.incidents.upsert_many([inc])
    svc = _svc(store)
    book = load_text(
        "name: lock\ntrigger:\n  detectors: [clinical.access.care-relationship]\nsteps:\n"
        "  - kind: open_case\n"
        "    start_clocks: false\n  - kind: contain\n    action: disable_account\n    target: actor_account\n"
    )
    (run,) = PlaybookEngine(svc, [book]).on_incidents([inc])
    assert run["status"] == "done"
    got = {c["target"]: c["status"] for c in svc.show(run["case_id"])["containment"]}
    assert got == {"bad;user": "refused", "n012": "awaiting_approval"}  # SYSTEM is never a target


def test_an_incident_that_grows_brings_its_new_observables_to_the_open_case(store: Store) -> None:
    import dataclasses

    inc = _insider(store)
    svc = _svc(store)
    engine = PlaybookEngine(svc, builtin())
    (run,) = engine.on_incidents([inc])
    before = svc.show(run["case_id"])
    engine.on_incidents([inc])  # unchanged: nothing new on the case
    assert len(svc.show(run["case_id"])["timeline"]) == len(before["timeline"])
    grown = dataclasses.replace(
        inc, entities=(*inc.entities, Entity(EntityKind.IP, "10.10.1.77")), severity=Severity.CRITICAL
    )
    store.incidents.upsert_many([grown])
    engine.on_incidents([grown])
    after = svc.show(run["case_id"])
    assert after["severity"] == "critical"
    assert "10.10.1.77" in [o["value"] for o in after["observables"]]
    assert after["timeline"][-1]["action"] == "case.incident_grew"
    assert [r["status"] for r in cases(store).runs(case_id=run["case_id"])] == ["done"]  # not run twice
