"""Incident use cases over SQLite and PostgreSQL: list, show, status, assign, comment, merge, split."""

from __future__ import annotations

import pytest

from healthsec.analyze.attack import AttackKB
from healthsec.ingest.attack_data import SHIPPED, load_attack
from healthsec.model import IncidentStatus, Severity
from healthsec.model.triage import ActivityKind
from healthsec.services import incidents as uc
from healthsec.services.common import Invalid, NotFound, Refused
from healthsec.store import Store


@pytest.fixture(scope="module")
def kb() -> AttackKB:
    return load_attack(SHIPPED)


def listed(store: Store, **kw: object) -> list[str]:
    return [r.incident.id for r in uc.list_incidents(store, **kw).items]  # type: ignore[arg-type]


def test_list_filters_orders_and_pages(hospital: Store) -> None:
    assert listed(hospital) == ["inc-pump", "inc-ws"]  # most severe first
    ranked = uc.list_incidents(hospital, order="risk", with_total=True)
    assert [r.incident.id for r in ranked.items] == ["inc-pump", "inc-ws"]  # a life-sustaining pump first
    assert ranked.total == 2
    assert all(r.risk is not None and r.risk.score > 0 for r in ranked.items)
    assert uc.list_incidents(hospital).items[0].risk is None  # risk only when asked for
    page = uc.list_incidents(hospital, limit=1, offset=1, with_total=True)
    assert ([r.incident.id for r in page.items], page.next_offset) == (["inc-ws"], None)
    assert listed(hospital, flt=uc.IncidentFilter(min_severity=Severity.CRITICAL)) == ["inc-pump"]
    uc.set_status(hospital, "inc-ws", "investigating", actor="ana")
    assert listed(hospital, flt=uc.IncidentFilter(status=IncidentStatus.INVESTIGATING)) == ["inc-ws"]
    uc.assign(hospital, "inc-pump", "ben", actor="ana")
    assert listed(hospital, flt=uc.IncidentFilter(assignee="ben")) == ["inc-pump"]
    assert listed(hospital, flt=uc.IncidentFilter(assignee="-")) == ["inc-ws"]
    with pytest.raises(Invalid, match="order"):
        uc.list_incidents(hospital, order="name")  # type: ignore[arg-type]


def test_detail_has_alerts_risk_attack_and_activity(hospital: Store, kb: AttackKB) -> None:
    d = uc.incident_detail(hospital, "inc-ws", kb)
    assert [a.id for a in d.alerts] == ["a1", "a2"]
    assert d.risk.incident_id == "inc-ws"
    assert [(t.id, t.name) for t in d.techniques] == [
        ("T1059.001", "PowerShell"),
        ("T1003.001", "LSASS Memory"),
    ]
    assert d.mitigations and d.mitigations[0][2] >= d.mitigations[-1][2]  # most covering first
    assert (d.assignee, d.activity) == (None, [])
    without = uc.incident_detail(hospital, "inc-ws", None)
    assert [t.name for t in without.techniques] == [None, None]
    with pytest.raises(NotFound, match="no incident 'nope'"):
        uc.incident_detail(hospital, "nope", kb)


def test_status_assign_comment_are_kept_and_audited(hospital: Store) -> None:
    inc = uc.set_status(hospital, "inc-pump", IncidentStatus.CONTAINED, actor="ana", note="pump isolated")
    assert inc.status is IncidentStatus.CONTAINED
    uc.assign(hospital, "inc-pump", "ben", actor="ana")
    uc.comment(hospital, "inc-pump", "vendor called back", actor="ben")
    uc.assign(hospital, "inc-pump", None, actor="ben")
    d = uc.incident_detail(hospital, "inc-pump")
    assert d.assignee is None
    assert [(h.kind, h.actor, h.value) for h in d.activity] == [
        (ActivityKind.STATUS, "ana", "contained"),
        (ActivityKind.ASSIGN, "ana", "ben"),
        (ActivityKind.COMMENT, "ben", "vendor called back"),
        (ActivityKind.ASSIGN, "ben", None),
    ]
    actions = [r["action"] for r in hospital.audit.list()]
    assert actions[:4] == ["incident.assign", "incident.comment", "incident.assign", "incident.status"]
    # bad input names the record and changes nothing
    with pytest.raises(Invalid, match="status 'solved'"):
        uc.set_status(hospital, "inc-pump", "solved", actor="ana")
    with pytest.raises(NotFound):
        uc.set_status(hospital, "ghost", "closed", actor="ana")
    with pytest.raises(NotFound):
        uc.assign(hospital, "ghost", "ben", actor="ana")
    with pytest.raises(NotFound):
        uc.comment(hospital, "ghost", "hello", actor="ana")
    with pytest.raises(Invalid, match="empty comment"):
        uc.comment(hospital, "inc-pump", "  ", actor="ana")
    with pytest.raises(Invalid, match="who made it"):
        uc.comment(hospital, "inc-pump", "text", actor="")
    assert len(uc.incident_detail(hospital, "inc-pump").activity) == 4


def test_merge_and_split_keep_every_alert(hospital: Store) -> None:
    merged = uc.merge(hospital, ["inc-ws", "inc-pump"], actor="ana")
    assert sorted(merged.alert_ids) == ["a1", "a2", "a3", "a4"]
    assert listed(hospital) == [merged.id]
    kept, moved = uc.split(hospital, merged.id, ["a3", "a4"], actor="ana")
    assert sorted(moved.alert_ids) == ["a3", "a4"]
    assert sorted(kept.alert_ids) == ["a1", "a2"]
    assert sorted(listed(hospital)) == sorted([kept.id, moved.id])
    with pytest.raises(Invalid, match="two different"):
        uc.merge(hospital, [kept.id, kept.id], actor="ana")
    with pytest.raises(NotFound, match="ghost"):
        uc.merge(hospital, [kept.id, "ghost"], actor="ana")
    with pytest.raises(Refused, match="cannot split"):
        uc.split(hospital, kept.id, ["a1", "a2"], actor="ana")  # would leave one side empty
    with pytest.raises(NotFound):
        uc.split(hospital, "ghost", ["a1"], actor="ana")
    assert sorted(a for r in uc.list_incidents(hospital).items for a in r.incident.alert_ids) == [
        "a1",
        "a2",
        "a3",
        "a4",
    ]


def test_correlate_stored_keeps_status(hospital: Store, kb: AttackKB) -> None:
    first = uc.correlate_stored(hospital, kb=kb, actor="cli")
    assert (first.alerts, first.alerts_in_incidents) == (5, 5)
    some = uc.list_incidents(hospital).items[0].incident
    uc.set_status(hospital, some.id, "investigating", actor="ana")
    uc.correlate_stored(hospital, kb=kb, actor="cli")
    assert uc.get_incident(hospital, some.id).status is IncidentStatus.INVESTIGATING
    from datetime import timedelta

    with pytest.raises(Invalid, match="window"):
        uc.correlate_stored(hospital, window=timedelta(0), actor="cli")
