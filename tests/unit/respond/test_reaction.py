"""Reaction time per campaign: first malicious event to first alert, incident, case and containment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from healthsec.model import Alert, Incident, Severity
from healthsec.respond.reaction import reaction_times

T0 = datetime(2027, 3, 3, 9, 0, tzinfo=UTC)


def _alert(aid: str, minutes: int) -> Alert:
    return Alert(
        id=aid,
        ts=T0 + timedelta(minutes=minutes),
        detector="d",
        detector_version="1",
        title=aid,
        score=1.0,
        severity=Severity.HIGH,
        explanation="x",
    )


def test_stages_are_measured_from_the_first_malicious_event() -> None:
    alerts = [_alert("a1", 5), _alert("a2", 1), _alert("b1", 30)]
    campaign = {"a1": "ransomware", "a2": "ransomware", "b1": None}
    inc = Incident(
        id="i1",
        title="r",
        first_seen=T0,
        last_seen=T0,
        severity=Severity.HIGH,
        score=1.0,
        alert_ids=("a1", "a2"),
    )
    rows = reaction_times(
        {"ransomware": T0, "insider_snooping": T0},
        alerts,
        lambda a: campaign[a.id],
        {"a2": T0 + timedelta(minutes=3)},  # a2 could only be raised at minute 3
        [inc],
        {"i1": T0 + timedelta(minutes=3, seconds=2)},
        {"i1": T0 + timedelta(minutes=3, seconds=4)},
    )
    assert rows[0] == {
        "campaign": "ransomware",
        "first_event": T0.isoformat(),
        "alert_s": 180.0,
        "incident_s": 180.0,
        "case_s": 182.0,
        "containment_s": 184.0,
    }
    assert rows[1]["alert_s"] is None
    assert rows[1]["case_s"] is None
