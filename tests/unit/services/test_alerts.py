"""Alert use cases over SQLite and PostgreSQL: filters, paging with totals, show, triage one or many."""

from __future__ import annotations

from datetime import timedelta

import pytest
from usecase_helpers import T0

from healthsec.model import Alert, Severity
from healthsec.model.triage import Verdict
from healthsec.services import alerts as uc
from healthsec.services.common import Invalid, NotFound, Page
from healthsec.store import Store


def ids(page: Page[Alert]) -> list[str]:
    return [a.id for a in page.items]


def test_filters_page_and_count(hospital: Store) -> None:
    every = uc.list_alerts(hospital, with_total=True)
    assert ids(every) == ["a1", "a2", "a3", "a4", "a5"]
    assert every.total == 5
    assert every.next_offset is None
    first = uc.list_alerts(hospital, limit=2, with_total=True)
    assert (ids(first), first.total, first.next_offset) == (["a1", "a2"], 5, 2)
    assert ids(uc.list_alerts(hospital, limit=2, offset=4)) == ["a5"]
    by = uc.AlertFilter
    assert ids(uc.list_alerts(hospital, by(detector="iomt"))) == ["a3", "a4"]
    assert ids(uc.list_alerts(hospital, by(min_severity=Severity.HIGH))) == ["a2", "a3", "a4"]
    window = by(since=T0.replace(minute=10), until=T0.replace(minute=30))
    assert ids(uc.list_alerts(hospital, window)) == ["a2", "a3"]  # since inclusive, until exclusive
    # an asset by name finds alerts that name its IP, and the other way round
    assert ids(uc.list_alerts(hospital, by(asset="infusion-07"))) == ["a3", "a4"]
    assert ids(uc.list_alerts(hospital, by(asset="10.1.0.11"))) == ["a1", "a2"]
    assert ids(uc.list_alerts(hospital, by(asset="elsewhere"))) == ["a5"]
    # a technique takes its sub-techniques; the scan pages and counts like the database does
    page = uc.list_alerts(hospital, by(technique="t1059"), limit=1, offset=1, with_total=True)
    assert (ids(page), page.total, page.next_offset) == (["a5"], 2, None)
    combined = by(technique="T1003", asset="ws-001", min_severity=Severity.HIGH)
    assert ids(uc.list_alerts(hospital, combined)) == ["a2"]
    hospital.alerts.assign("inc-ws", ["a1", "a2"])
    assert ids(uc.list_alerts(hospital, by(incident_id="inc-ws"))) == ["a1", "a2"]


def test_empty_window_matches_nothing(hospital: Store) -> None:
    # [since, until) with until at or before since is empty: an empty page, not a refusal (schemathesis'
    # positive-data check sent since == until, which the API document allows)
    for until in (T0, T0 - timedelta(hours=1)):
        page = uc.list_alerts(hospital, uc.AlertFilter(since=T0, until=until))
        assert (ids(page), page.next_offset) == ([], None)


def test_malformed_filters_are_named(hospital: Store) -> None:
    with pytest.raises(Invalid, match="verdict 'maybe'"):
        uc.list_alerts(hospital, uc.AlertFilter(verdict="maybe"))
    with pytest.raises(Invalid, match="limit"):
        uc.list_alerts(hospital, limit=0)
    with pytest.raises(Invalid, match="offset"):
        uc.list_alerts(hospital, offset=-1)


def test_show_unknown_alert_is_not_found(hospital: Store) -> None:
    with pytest.raises(NotFound) as err:
        uc.get_alert(hospital, "nope")
    assert str(err.value) == "no alert 'nope'"
    shown = uc.get_alert(hospital, "a3")
    assert (shown.alert.id, shown.incident_id, shown.verdict, shown.history) == ("a3", "inc-pump", None, [])


def test_triage_keeps_feedback_for_training_and_history(hospital: Store) -> None:
    done = uc.triage_alert(hospital, "a3", "tp", actor="ana", comment="pump really changed", now=T0)
    assert (done.verdict, done.detector, done.detector_version) == (Verdict.TRUE_POSITIVE, "iomt", "2")
    assert done.features == {"count": 3.0}
    later = T0 + timedelta(hours=1)
    uc.triage_alert(hospital, "a3", Verdict.FALSE_POSITIVE, actor="ben", comment="maintenance", now=later)
    shown = uc.get_alert(hospital, "a3")
    assert shown.verdict is not None
    assert (shown.verdict.verdict, shown.verdict.actor, shown.verdict.ts) == (
        Verdict.FALSE_POSITIVE,
        "ben",
        later,
    )
    assert [(f.actor, f.comment) for f in shown.history] == [
        ("ana", "pump really changed"),
        ("ben", "maintenance"),
    ]
    labels = uc.training_labels(hospital, detector="iomt")
    assert [(f.alert_id, f.verdict) for f in labels] == [("a3", Verdict.FALSE_POSITIVE)]
    assert uc.training_labels(hospital, detector="sigma") == []
    untriaged = uc.list_alerts(hospital, uc.AlertFilter(verdict="untriaged"))
    assert ids(untriaged) == ["a1", "a2", "a4", "a5"]
    assert ids(uc.list_alerts(hospital, uc.AlertFilter(verdict="false_positive"))) == ["a3"]
    rows = uc.alert_rows(hospital, uc.AlertFilter(detector="iomt")).items
    assert [(r.alert.id, r.incident_id, r.verdict) for r in rows] == [
        ("a3", "inc-pump", Verdict.FALSE_POSITIVE),
        ("a4", "inc-pump", None),
    ]
    audit = [r for r in hospital.audit.list() if r["action"] == "alert.triage"]
    assert [r["actor"] for r in audit] == ["ben", "ana"]


def test_bulk_triage_is_all_or_nothing(hospital: Store) -> None:
    with pytest.raises(NotFound) as err:
        uc.triage_alerts(hospital, ["a1", "ghost-1", "a2", "ghost-2"], "fp", actor="ana")
    assert "ghost-1, ghost-2" in str(err.value)
    assert uc.get_alert(hospital, "a1").history == []  # nothing stored for the known ones either
    done = uc.triage_alerts(hospital, ["a1", "a2", "a1"], "false_positive", actor="ana")
    assert [f.alert_id for f in done] == ["a1", "a2"]  # a repeated id counts once
    for bad, message in [
        ([], "no alert ids"),
        (["a1"], "verdict 'yes'"),
    ]:
        with pytest.raises(Invalid, match=message):
            uc.triage_alerts(hospital, bad, "yes" if bad else "tp", actor="ana")
    with pytest.raises(Invalid, match="who decided"):
        uc.triage_alerts(hospital, ["a1"], "tp", actor=" ")
    with pytest.raises(Invalid, match="comment longer"):
        uc.triage_alerts(hospital, ["a1"], "tp", actor="ana", comment="x" * (uc.MAX_COMMENT + 1))
