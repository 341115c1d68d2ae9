"""Conformance kits every adapter passes: ``check_detector`` and ``check_source`` (used by the tests)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from healthsec.detect import AlertingDetector
from healthsec.ingest import Source
from healthsec.model import Alert, Event, EventBase, ParseError


class ConformanceError(AssertionError):
    """An adapter broke a rule of its protocol; the message says which."""


def check_detector(
    make: Callable[[], AlertingDetector], baseline: Sequence[Event], events: Sequence[Event]
) -> list[Alert]:
    """Fit a fresh detector twice on the same data and check the AlertingDetector rules.

    Rules: ``name`` and ``version`` are set; alerts cite only events they were given; every alert has
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
        if a.detector != first.name:
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
