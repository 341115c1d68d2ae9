"""Conformance kits every adapter passes: ``check_detector``, ``check_source`` and ``check_store``.

The test suite runs them over every detector of the registry, every ingest source and both store
backends (SQLite, PostgreSQL); a plugin author runs them over their own adapter the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from healthsec.detect import AlertingDetector
from healthsec.ingest import Source
from healthsec.model import Alert, Asset, Criticality, Event, EventBase, Flow, Incident, ParseError, Severity

if TYPE_CHECKING:
    from healthsec.store import Store


class ConformanceError(AssertionError):
    """An adapter broke a rule of its protocol; the message says which."""


def check_detector(
    make: Callable[[], AlertingDetector], baseline: Sequence[Event], events: Sequence[Event]
) -> list[Alert]:
    """Fit a fresh detector twice on the same data and check the AlertingDetector rules.

    Rules: ``name`` and ``version`` are set; alerts name the detector (or one of its rules, as
    ``name.rule``); alerts cite only events they were given; every alert has
    an explanation, a score that is a finite number, and ATT&CK ids of the right shape; the same input
    gives the same alert ids (stable ids make re-ingestion idempotent); the input is not changed.
    """
    before = [e.id for e in events]
    first, second = make(), make()
    for det in (first, second):
        if not det.name or not det.version:
            raise ConformanceError(f"{type(det).__name__} has no name or version")
        det.fit(baseline)
    alerts = first.detect(events)
    again = second.detect(events)
    if [e.id for e in events] != before:
        raise ConformanceError(f"{first.name} changed its input")
    if sorted(a.id for a in alerts) != sorted(a.id for a in again):
        raise ConformanceError(f"{first.name} is not deterministic: alert ids differ between two runs")
    given = set(before)
    for a in alerts:
        if a.detector != first.name and not a.detector.startswith(first.name + "."):
            raise ConformanceError(f"alert {a.id} names detector {a.detector!r}, not {first.name!r}")
        if not a.evidence or not set(a.evidence) <= given:
            raise ConformanceError(f"alert {a.id} of {first.name} cites events it was not given")
        if not (a.score == a.score and abs(a.score) != float("inf")):
            raise ConformanceError(f"alert {a.id} of {first.name} has a non-finite score")
        bad = [t for t in a.techniques if not (t.startswith("T") and t[1:5].isdigit())]
        if bad:
            raise ConformanceError(f"alert {a.id} of {first.name} has malformed technique ids {bad}")
    return alerts


def check_source(make: Callable[[], Source]) -> tuple[list[Event], list[ParseError]]:
    """Read a fresh source twice and check the Source rules.

    Rules: only events and parse errors come out; event ids are unique within a read and the same on
    a second read (idempotent re-ingestion); parse errors name a locator and a reason.
    """
    runs = []
    for _ in range(2):
        events: list[Event] = []
        errors: list[ParseError] = []
        for item in make().read():
            if isinstance(item, ParseError):
                if not item.locator or not item.reason:
                    raise ConformanceError(f"parse error without locator or reason: {item}")
                errors.append(item)
            elif isinstance(item, EventBase):
                events.append(item)
            else:
                raise ConformanceError(f"source yielded {type(item).__name__}, not an event or a parse error")
        ids = [e.id for e in events]
        if len(ids) != len(set(ids)):
            raise ConformanceError("event ids are not unique within one read")
        runs.append((events, errors))
    if [e.id for e in runs[0][0]] != [e.id for e in runs[1][0]]:
        raise ConformanceError("event ids differ between two reads of the same input")
    return runs[0]


def check_store(store: Store) -> None:
    """Check a store's repositories on a fresh organisation (any backend) against the store contract.

    Rules: events and alerts are idempotent on id and read back equal; ``between`` returns
    ``[start, end)`` in (time, id) order and ``first_ts`` the earliest time; an alert re-sent with more
    evidence grows in place; incidents upsert and link their alerts; assets upsert by id and are found
    by address; the audit trail keeps what was recorded; another organisation sees none of it.
    """
    t0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    flows = [
        Flow(
            id=f"kit-f{i}",
            ts=t0 + timedelta(seconds=(7 - i) // 2),
            source="kit",
            src_ip="10.0.0.1",
            dst_ip="10.0.0.2",
        )
        for i in range(8)
    ]

    def ensure(ok: bool, rule: str) -> None:
        if not ok:
            raise ConformanceError(f"store ({store.engine.dialect.name}): {rule}")

    ensure(store.events.add_many(flows) == 8 and store.events.add_many(flows) == 0, "events not idempotent")
    ensure(store.events.get("kit-f3") == flows[3], "an event does not read back equal")
    got = [e.id for e in store.events.between(t0, t0 + timedelta(seconds=3))]
    want = [f.id for f in sorted(flows, key=lambda f: (f.ts, f.id)) if f.ts < t0 + timedelta(seconds=3)]
    ensure(got == want, f"between() not [start, end) in (time, id) order: {got} != {want}")
    ensure(store.events.first_ts() == t0, "first_ts() is not the earliest event time")
    alert = Alert(
        id="kit-a1",
        ts=t0,
        detector="kit",
        detector_version="1",
        title="kit",
        score=0.5,
        severity=Severity.HIGH,
        explanation="kit",
        evidence=("kit-f1",),
    )
    ensure(
        store.alerts.add_many([alert]) == 1 and store.alerts.add_many([alert]) == 0, "alerts not idempotent"
    )
    grown = dataclasses.replace(alert, evidence=("kit-f1", "kit-f2"))
    store.alerts.add_many([grown])
    back = store.alerts.get("kit-a1")
    ensure(back is not None and set(back.evidence) == {"kit-f1", "kit-f2"}, "a re-sent alert did not grow")
    inc = Incident(
        id="kit-i1",
        title="kit",
        first_seen=t0,
        last_seen=t0,
        severity=Severity.HIGH,
        score=0.5,
        alert_ids=("kit-a1",),
    )
    store.incidents.upsert_many([inc])
    store.incidents.upsert_many([inc])
    ensure(store.incidents.count() == 1, "incident upsert is not idempotent")
    ensure([a.id for a in store.alerts.list(incident_id="kit-i1")] == ["kit-a1"], "incident not linked")
    asset = Asset(
        id="kit-h1", name="kit", role="ws", zone="it", ip="10.0.0.1", criticality=Criticality.BUSINESS
    )
    store.assets.upsert_many([asset, asset])
    found = store.assets.by_ip("10.0.0.1")
    ensure(store.assets.count() == 1 and found is not None and found.id == "kit-h1", "asset upsert/lookup")
    store.audit.record("kit", "check", "kit-h1")
    ensure(any(r.get("action") == "check" for r in store.audit.list()), "audit record lost")
    other = store.for_org(store.org + "-other")
    ensure(other.events.count() == 0 and other.alerts.count() == 0, "another organisation sees the data")
