"""Correlation: shared entities in a window make incidents; order never matters; merge and split keep all."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from healthsec.analyze.correlate import StreamingCorrelator, correlate, merge, split
from healthsec.model import Alert, Entity, EntityKind, EntityRole, Severity

T0 = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
A, T = EntityRole.ACTOR, EntityRole.TARGET


def alert(
    i: int,
    minutes: float,
    *entities: tuple[EntityKind, str, EntityRole],
    tactic: str = "execution",
    sev: Severity = Severity.MEDIUM,
) -> Alert:
    return Alert(
        id=f"a{i:03d}",
        ts=T0 + timedelta(minutes=minutes),
        detector="d",
        detector_version="1",
        title=f"alert {i}",
        score=0.5,
        severity=sev,
        explanation="x",
        entities=tuple(Entity(k, v, r) for k, v, r in entities),
        tactics=(tactic,),
    )


def test_shared_actor_links_and_shared_target_alone_does_not() -> None:
    a1 = alert(1, 0, (EntityKind.IP, "10.0.0.5", A), (EntityKind.HOST, "ehr", T))
    a2 = alert(2, 10, (EntityKind.IP, "10.0.0.5", A))
    a3 = alert(3, 20, (EntityKind.IP, "192.0.2.9", A), (EntityKind.HOST, "ehr", T))
    groups = sorted(sorted(i.alert_ids) for i in correlate([a1, a2, a3]))
    assert groups == [["a001", "a002"], ["a003"]]


def test_target_that_later_acts_continues_the_story_and_ip_folds_to_host() -> None:
    a1 = alert(1, 0, (EntityKind.HOST, "ws-1", A), (EntityKind.IP, "10.0.0.7", T), tactic="lateral-movement")
    a2 = alert(2, 30, (EntityKind.HOST, "ws-7", A), tactic="impact", sev=Severity.HIGH)
    incs = correlate([a1, a2], hosts={"10.0.0.7": "ws-7"})
    assert len(incs) == 1
    assert incs[0].tactics == ("lateral-movement", "impact")


def test_alerts_outside_the_window_stay_apart() -> None:
    a1 = alert(1, 0, (EntityKind.USER, "n001", A))
    a2 = alert(2, 60 * 5, (EntityKind.USER, "n001", A))
    assert len(correlate([a1, a2], window=timedelta(hours=3))) == 2
    assert len(correlate([a1, a2], window=timedelta(hours=6))) == 1


def test_result_does_not_depend_on_arrival_order() -> None:
    rng = random.Random(3)
    alerts = []
    for i in range(120):
        ents = [(EntityKind.IP, f"10.0.0.{rng.randrange(40)}", rng.choice((A, T))) for _ in range(2)]
        alerts.append(alert(i, rng.uniform(0, 6000), *ents))
    reference = {frozenset(i.alert_ids) for i in correlate(alerts)}
    for _ in range(5):
        rng.shuffle(alerts)
        s = StreamingCorrelator()
        for k in range(0, len(alerts), 7):
            s.add(alerts[k : k + 7])
        assert {frozenset(i.alert_ids) for i in s.incidents()} == reference
    assert len(reference) > 1
    assert len(reference) < 120


def test_multi_stage_chain_raises_severity_and_membership_is_scored() -> None:
    chain = [
        alert(1, 0, (EntityKind.HOST, "ws-1", A), tactic="initial-access"),
        alert(2, 5, (EntityKind.HOST, "ws-1", A), tactic="credential-access"),
        alert(3, 9, (EntityKind.HOST, "ws-1", A), tactic="impact"),
    ]
    (inc,) = correlate(chain)
    assert inc.severity == Severity.HIGH
    assert set(inc.membership) == {"a001", "a002", "a003"}
    assert all(0.5 <= v <= 1.0 for v in inc.membership.values())
    assert "initial-access → credential-access → impact" in inc.summary


def test_merge_and_split_keep_every_alert() -> None:
    a = [alert(i, i, (EntityKind.USER, f"u{i % 2}", A)) for i in range(6)]
    by_id = {x.id: x for x in a}
    incs = correlate(a)
    assert len(incs) == 2
    merged = merge(incs, by_id)
    assert set(merged.alert_ids) == set(by_id)
    kept, moved = split(merged, ["a000", "a002"], by_id)
    assert set(kept.alert_ids) | set(moved.alert_ids) == set(by_id)
    assert not set(kept.alert_ids) & set(moved.alert_ids)
    with pytest.raises(ValueError, match="not in incident"):
        split(kept, ["a000"], by_id)
