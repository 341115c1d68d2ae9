"""Alert reads at scale, over SQLite and PostgreSQL: keyset pages, bounded counts, risk counted in SQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from healthsec.analyze.risk import RiskModel
from healthsec.model import Alert, Asset, Criticality, Entity, EntityKind, Severity
from healthsec.services import alerts as uc
from healthsec.services.common import NotFound
from healthsec.services.risk import risk_model
from healthsec.store import Store
from healthsec.store.triage import AlertSql, alert_queries
from healthsec.store.vulns import profiles, vulns

T = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
ASSETS = [
    Asset(id="as-1", name="pacs-1", role="pacs", zone="imaging", ip="10.0.0.1", criticality=Criticality(4)),
    Asset(
        id="as-2", name="ws-2", role="workstation", zone="admin", ip="10.0.0.2", criticality=Criticality(1)
    ),
]


def alert(
    i: int, *ents: Entity, detector: str = "d", severity: Severity = Severity.LOW, **kw: object
) -> Alert:
    a = Alert(
        id=f"a{i:03d}",
        ts=T + timedelta(seconds=i // 2),  # pairs share a time: the id breaks the tie
        detector=detector,
        detector_version="1",
        title=f"title {i % 3}",
        score=0.5,
        severity=severity,
        explanation="why",
        entities=ents,
    )
    return dataclasses.replace(a, **kw) if kw else a  # type: ignore[arg-type]


def test_keyset_pages_are_the_offset_pages_both_ways(store: Store) -> None:
    store.alerts.add_many([alert(i, detector=f"d{i % 2}") for i in range(23)])
    q, every = alert_queries(store), AlertSql()
    for newest_first in (False, True):
        by_offset = q.bodies(every, limit=100, newest_first=newest_first)
        walked, after = [], None
        while True:
            page = q.bodies(every, limit=5, after=after, newest_first=newest_first)
            walked += page
            if len(page) < 5:
                break
            after = q.position(page[-1]["id"])
        assert [b["id"] for b in walked] == [b["id"] for b in by_offset]
        assert len(walked) == 23
    # through the use case: next_after chains the pages, filters hold on every page
    flt = uc.AlertFilter(detector="d1")
    ids, after_id = [], None
    while True:
        page = uc.list_alert_bodies(store, flt, limit=4, after=after_id)
        ids += [b["id"] for b in page.items]
        if page.next_after is None:
            break
        after_id = page.next_after
    assert ids == [f"a{i:03d}" for i in range(23) if i % 2]
    assert q.count(every, at_most=10) == 10
    assert q.count(every) == 23


def test_unknown_after_is_a_clear_error(store: Store) -> None:
    store.alerts.add_many([alert(1)])
    with pytest.raises(NotFound, match="after: no alert 'nope'"):
        uc.list_alert_bodies(store, after="nope")
    with pytest.raises(NotFound, match="after: no alert"):
        uc.alert_page_json(store, after="nope")


def test_raw_page_is_the_parsed_page(store: Store) -> None:
    import orjson

    store.alerts.add_many([alert(i, Entity(EntityKind.IP, "10.0.0.1")) for i in range(7)])
    raw, page = uc.alert_page_json(store, limit=3)
    parsed = uc.list_alert_bodies(store, limit=3)
    assert [orjson.loads(r) for r in raw] == parsed.items
    assert page.next_after == parsed.next_after == "a002"
    raw2, _ = uc.alert_page_json(store, limit=3, after=page.next_after)
    assert [orjson.loads(r)["id"] for r in raw2] == ["a003", "a004", "a005"]


def test_risk_counted_in_sql_equals_risk_from_every_alert(store: Store) -> None:
    """The aggregate gives the ranking the old computation (every alert loaded) gave, explanations too."""
    store.assets.upsert_many(ASSETS)
    ip1, host1 = Entity(EntityKind.IP, "10.0.0.1"), Entity(EntityKind.HOST, "PACS-1")
    alerts = [
        alert(0, ip1),
        alert(1, ip1, host1),  # two keys of one asset: one alert
        alert(2, host1, severity=Severity.CRITICAL),
        alert(3, ip1, Entity(EntityKind.IP, "10.0.0.2")),  # two assets
        alert(4, Entity(EntityKind.USER, "10.0.0.2")),  # a user is not an asset
        alert(5, Entity(EntityKind.IP, "10.9.9.9")),  # not inventoried
        alert(6, ip1, detector="other", severity=Severity.HIGH),
        alert(7),
    ]
    store.alerts.add_many(alerts)
    # an alert seen again with other entities and severity replaces the old one
    store.alerts.add_many([dataclasses.replace(alerts[0], entities=(host1,), severity=Severity.MEDIUM)])
    old = RiskModel.build(
        store.assets.list(), profiles(store).list(), vulns(store).list(), store.alerts.all()
    ).ranking()
    new = risk_model(store).ranking()
    assert new == old
    assert any("x " in f.detail for r in new for f in r.likelihood_factors)  # counts shown, as before
