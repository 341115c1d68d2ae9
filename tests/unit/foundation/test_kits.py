"""Every foundation detector and the simulator source pass the conformance kits; broken adapters do not."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime

import pytest

from healthsec.detect.registry import DetectorContext, instantiate
from healthsec.ingest import IterableSource
from healthsec.model import Alert, Event, Flow, ParseError, Severity
from healthsec.sim import simulate
from healthsec.testing.kits import ConformanceError, check_detector, check_source


@pytest.fixture(scope="module")
def days() -> tuple[list[Event], list[Event], list]:  # type: ignore[type-arg]
    base = simulate(9, day=0, campaigns=())
    day = simulate(9, day=1, hospital=base.hospital)
    return base.events, day.events, day.assets


@pytest.mark.parametrize("index", range(8))
def test_foundation_detectors_conform(days, index: int) -> None:  # type: ignore[no-untyped-def]
    baseline, events, assets = days
    ctx = DetectorContext(assets=tuple(assets), seed=9)
    name = instantiate(ctx)[index].name
    alerts = check_detector(lambda: instantiate(ctx)[index], baseline, events)
    assert alerts, f"{name} raised nothing on an attacked day"


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
