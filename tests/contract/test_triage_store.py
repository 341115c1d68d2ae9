"""Triage tables over SQLite and PostgreSQL: verdicts and incident activity stay in their organisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from healthsec.model.triage import ActivityKind, AlertFeedback, IncidentActivity, Verdict
from healthsec.store import Store
from healthsec.store.triage import activity, feedback

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)


def _verdict(alert_id: str, verdict: Verdict, minutes: int, actor: str = "ana") -> AlertFeedback:
    return AlertFeedback(
        alert_id=alert_id,
        verdict=verdict,
        actor=actor,
        ts=T0 + timedelta(minutes=minutes),
        detector="d",
        detector_version="1",
        features={"x": 1.0, "host": "ws-1", "missing": None},
    )


def test_latest_verdict_per_alert_and_organisation(store: Store) -> None:
    other = store.for_org(f"{store.org}-other")
    many = [_verdict(f"a{i}", Verdict.TRUE_POSITIVE, i) for i in range(1200)]  # more than one batch of ids
    assert feedback(store).add_many(many) == 1200
    feedback(store).add_many([_verdict("a7", Verdict.FALSE_POSITIVE, 5000, actor="ben")])
    latest = feedback(store).latest([f"a{i}" for i in range(1200)])
    assert len(latest) == 1200
    assert (latest["a7"].verdict, latest["a7"].actor) == (Verdict.FALSE_POSITIVE, "ben")
    assert latest["a7"].features == {"x": 1.0, "host": "ws-1", "missing": None}
    assert latest["a7"].ts == T0 + timedelta(minutes=5000)
    assert len(feedback(store).latest()) == 1200
    assert [f.verdict for f in feedback(store).history("a7")] == [
        Verdict.TRUE_POSITIVE,
        Verdict.FALSE_POSITIVE,
    ]
    assert feedback(other).latest() == {}
    assert feedback(other).history("a7") == []
    assert feedback(store).add_many([]) == 0


def test_activity_and_assignees_stay_in_their_organisation(store: Store) -> None:
    other = store.for_org(f"{store.org}-other")

    def entry(
        kind: ActivityKind, value: str | None, minutes: int, incident: str = "inc-1"
    ) -> IncidentActivity:
        return IncidentActivity(
            incident_id=incident, kind=kind, actor="ana", ts=T0 + timedelta(minutes=minutes), value=value
        )

    for e in [
        entry(ActivityKind.ASSIGN, "ana", 0),
        entry(ActivityKind.COMMENT, "looking", 1),
        entry(ActivityKind.ASSIGN, "ben", 2),
        entry(ActivityKind.ASSIGN, "ana", 3, incident="inc-2"),
        entry(ActivityKind.ASSIGN, None, 4, incident="inc-2"),
    ]:
        activity(store).add(e)
    activity(other).add(entry(ActivityKind.ASSIGN, "eve", 0))
    assert activity(store).assignees() == {"inc-1": "ben", "inc-2": None}
    assert activity(other).assignees() == {"inc-1": "eve"}
    history = activity(store).for_incident("inc-1")
    assert [(h.kind, h.value) for h in history] == [
        (ActivityKind.ASSIGN, "ana"),
        (ActivityKind.COMMENT, "looking"),
        (ActivityKind.ASSIGN, "ben"),
    ]
    assert history[0].ts == T0
