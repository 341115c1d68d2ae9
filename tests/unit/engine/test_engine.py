"""The engine: buckets, learning period, models handed over while running, dead letters, profiles."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from healthsec.detect.registry import (
    REGISTRY,
    DetectorContext,
    DetectorSpec,
    Profile,
    UnknownDetector,
    spec_for,
)
from healthsec.engine import BUCKET, Engine
from healthsec.model import Alert, Event, Flow, Severity

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def flow(i: int, minutes: float, port: int = 443) -> Flow:
    return Flow(
        id=f"f{i}",
        ts=T0 + timedelta(minutes=minutes),
        source="t",
        src_ip="10.0.0.5",
        dst_ip="10.0.0.9",
        dst_port=port,
    )


class History:
    def __init__(self, events: Sequence[Event]) -> None:
        self.events = list(events)
        self.calls: list[tuple[datetime, datetime]] = []

    def between(self, start: datetime, end: datetime) -> Iterable[Event]:
        self.calls.append((start, end))
        return [e for e in self.events if start <= e.ts < end]


class PortRule:
    """Alerts on port 104; ``fit`` records what it learnt from."""

    name, version = "port-rule", "1"

    def __init__(self) -> None:
        self.fitted_on: list[str] | None = None

    def fit(self, events: Iterable[Event]) -> None:
        self.fitted_on = [e.id for e in events]

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        return [
            Alert(
                id=f"al-{e.id}",
                ts=e.ts,
                detector=self.name,
                detector_version="1",
                title="port 104",
                score=1.0,
                severity=Severity.HIGH,
                explanation="flow to 104",
                evidence=(e.id,),
                techniques=("T1046",),
            )
            for e in events
            if getattr(e, "dst_port", None) == 104
        ]


class Fragile(PortRule):
    name = "fragile"

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        if any(e.id == "f2" for e in events):
            raise ValueError("cannot read field x")
        return super().detect(events)


def run(engine: Engine, events: Sequence[Event]) -> list[Alert]:
    history = History(events)
    alerts: list[Alert] = []
    start, last = T0, max(e.ts for e in events)
    while start <= last:
        bucket = [e for e in events if start <= e.ts < start + BUCKET]
        alerts += engine.process(start, sorted(bucket, key=lambda e: (e.ts, e.id)), history).alerts
        start += BUCKET
    return alerts


def test_rules_run_from_the_first_event_and_baselines_wait_for_the_learning_period() -> None:
    rule, learner = PortRule(), PortRule()
    learner.name = "learner"
    engine = Engine(
        [spec_for(rule), spec_for(learner, needs="learning")], DetectorContext(), learning=timedelta(hours=2)
    )
    events = [flow(0, 10, 104), flow(1, 70), flow(2, 150, 104), flow(3, 170, 104)]
    alerts = run(engine, events)
    by = {(a.detector, a.id) for a in alerts}
    assert ("port-rule", "al-f0") in by  # the rule alerts during learning
    assert not any(d == "learner" and i == "al-f0" for d, i in by)  # the baseline does not
    assert learner.fitted_on == ["f0", "f1"]  # fitted once, on exactly the learning period
    assert ("learner", "al-f2") in by and ("learner", "al-f3") in by
    # ATT&CK enrichment fills tactics from the pinned knowledge base when one is given
    assert all(a.tactics == () for a in alerts)


def test_attack_enrichment_and_correlation() -> None:
    from healthsec.ingest.attack_data import load_attack

    engine = Engine([spec_for(PortRule())], DetectorContext(), kb=load_attack())
    step = engine.process(T0, [flow(0, 1, 104), flow(1, 2, 104)], History([]))
    assert {a.tactics for a in step.alerts} == {("discovery",)}
    assert step.incidents, "alerts on one host within the window form an incident"


def test_a_detector_failing_on_one_event_is_a_dead_letter_and_the_rest_goes_on() -> None:
    engine = Engine([spec_for(Fragile()), spec_for(PortRule())], DetectorContext())
    step = engine.process(T0, [flow(1, 1, 104), flow(2, 2, 104), flow(3, 3, 104)], History([]))
    assert [(f.detector, f.event_id) for f in step.failures] == [("fragile", "f2")]
    assert "cannot read field x" in step.failures[0].reason
    fragile = sorted(a.id for a in step.alerts if a.detector == "fragile")
    assert fragile == ["al-f1", "al-f3"]  # the fragile detector still judged the other events
    assert len([a for a in step.alerts if a.detector == "port-rule"]) == 3


def test_a_model_detector_waits_then_runs_when_a_model_is_handed_over() -> None:
    spec = DetectorSpec(
        "model-rule",
        "1",
        frozenset({"flow"}),
        "model",
        "test",
        model_kind="flows",
        model_factory=lambda loaded: loaded,
    )
    engine = Engine([spec], DetectorContext())
    assert engine.status()[0].state == "waiting for a model"
    assert engine.model_kinds() == ["flows"]
    assert engine.detector("model-rule") is None
    assert engine.process(T0, [flow(0, 1, 104)], History([])).alerts == []
    assert engine.set_model("flows", PortRule()) == ["model-rule"]
    assert engine.status()[0].state == "running"
    assert [a.id for a in engine.process(T0 + BUCKET, [flow(1, 61, 104)], History([])).alerts] == ["al-f1"]
    engine.set_model("flows", None)
    assert engine.status()[0].state == "waiting for a model"


def test_learning_progress_is_reported() -> None:
    learner = PortRule()
    engine = Engine([spec_for(learner, needs="learning")], DetectorContext(), learning=timedelta(hours=4))
    engine.process(T0, [flow(0, 1)], History([]))
    st = engine.status()[0]
    assert st.state == "learning"
    assert st.progress == pytest.approx(0.25)


def test_profiles_default_to_every_detector_and_refuse_unknown_names() -> None:
    run_specs, off = Profile().resolve()
    assert [s.name for s in run_specs] == [s.name for s in REGISTRY if s.default]
    assert [s.name for s in off] == [s.name for s in REGISTRY if not s.default]
    run_specs, off = Profile(disabled=("sigma",)).resolve()
    assert "sigma" not in {s.name for s in run_specs} and "sigma" in {s.name for s in off}
    run_specs, _ = Profile(enabled=("clinical.telemetry",)).resolve()
    assert [s.name for s in run_specs] == ["clinical.telemetry"]
    with pytest.raises(UnknownDetector, match="no-such-detector"):
        Profile(enabled=("no-such-detector",)).resolve()


def test_every_registered_detector_names_its_kinds_and_needs() -> None:
    from healthsec.model.events import EVENT_TYPES

    for spec in REGISTRY:
        assert spec.kinds and spec.kinds <= set(EVENT_TYPES), spec.name
        assert (spec.factory is not None) != (spec.needs == "model"), spec.name
        if spec.needs == "model":
            assert spec.model_kind in {"flows", "flows-federated", "devices", "telemetry"}
