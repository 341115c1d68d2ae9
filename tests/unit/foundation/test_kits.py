"""The conformance kits reject broken adapters (every registered one passes: test_registry_kits.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime

import pytest

from healthsec.ingest import IterableSource
from healthsec.model import Alert, Event, Flow, ParseError, Severity
from healthsec.sim import simulate
from healthsec.testing.kits import ConformanceError, check_detector, check_source


class Forgetful:
    """Cites an event it was never given."""

    name, version = "forgetful", "1"

    def fit(self, events: Iterable[Event]) -> None:
        pass

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        return [
            Alert(
                id="a",
                ts=datetime(2026, 1, 1, tzinfo=UTC),
                detector="forgetful",
                detector_version="1",
                title="t",
                score=1.0,
                severity=Severity.LOW,
                explanation="x",
                evidence=("ghost",),
            )
        ]


def test_kit_rejects_a_detector_citing_unknown_events() -> None:
    with pytest.raises(ConformanceError, match="cites events"):
        check_detector(Forgetful, [], [])


def test_simulator_source_conforms_and_kit_rejects_unstable_ids() -> None:
    day = simulate(9, day=1)
    events, errors = check_source(lambda: IterableSource("sim", day.events))
    assert len(events) == len(day.events)
    assert errors == []
    counter = iter(range(10**6))

    class Unstable:
        name = "unstable"

        def read(self) -> Iterator[Event | ParseError]:
            yield Flow(
                id=f"f{next(counter)}",
                ts=datetime(2026, 1, 1, tzinfo=UTC),
                source="t",
                src_ip="10.0.0.1",
                dst_ip="10.0.0.2",
            )

    with pytest.raises(ConformanceError, match="differ between two reads"):
        check_source(Unstable)
