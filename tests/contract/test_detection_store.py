"""Detection state on SQLite and PostgreSQL: lease, cursor, dead letters, a restart that loses nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from healthsec.detect.registry import DetectorContext, spec_for
from healthsec.engine import Engine
from healthsec.ingest import IterableSource
from healthsec.model import Alert, Event, Flow, Severity
from healthsec.pipeline import Pipeline
from healthsec.store import Store
from healthsec.store.detection import detection

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


class PortRule:
    """Alerts on flows to port 104 (stable ids)."""

    name, version = "port-rule", "1"

    def fit(self, events: Iterable[Event]) -> None:
        self.fitted = [e.id for e in events]

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        return [
            Alert(
                id=f"al-{self.name}-{e.id}",
                ts=e.ts,
                detector=self.name,
                detector_version="1",
                title="port 104",
                score=1.0,
                severity=Severity.HIGH,
                explanation="flow to 104",
                evidence=(e.id,),
            )
            for e in events
            if getattr(e, "dst_port", None) == 104
        ]


def _flows(n: int) -> list[Flow]:
    return [
        Flow(
            id=f"f{i:04d}",
            ts=T0 + timedelta(minutes=7 * i),
            source="t",
            src_ip="10.0.0.5",
            dst_ip="10.0.0.9",
            dst_port=104 if i % 9 == 0 else 443,
        )
        for i in range(n)
    ]


def _engine() -> Engine:
    learner = PortRule()
    learner.name = "learner"
    return Engine(
        [spec_for(PortRule()), spec_for(learner, needs="learning")],
        DetectorContext(),
        learning=timedelta(hours=6),
    )


def test_lease_is_exclusive_until_released(store: Store) -> None:
    repo = detection(store)
    assert repo.acquire("w1", 30)
    assert repo.acquire("w1", 30)  # renewal
    assert not repo.acquire("w2", 30)
    repo.release("w1")
    assert repo.acquire("w2", 30)
    assert repo.acquire("w3", -1) is False  # w2 still holds it


def test_dead_letters_are_listed_counted_and_removed(store: Store) -> None:
    repo = detection(store)
    assert repo.add_dead_letters([("sigma", "e1", "KeyError: 'Image'"), ("hl7", None, "bad")]) == 2
    repo.add_dead_letters([("sigma", "e1", "KeyError: 'Image'")])  # same failure again: one row, 2 attempts
    letters = repo.dead_letters()
    assert repo.count_dead_letters() == 2
    assert {(d.detector, d.event_id) for d in letters} == {("sigma", "e1"), ("hl7", None)}
    assert repo.remove_dead_letters([d.id for d in letters if d.detector == "sigma"]) == 1
    assert [d.detector for d in repo.dead_letters()] == ["hl7"]


def test_a_restarted_pipeline_resumes_without_losing_or_relearning(store: Store) -> None:
    events = _flows(400)  # ~46 hours: a 6-hour learning period, then detection
    continuous_store = store.for_org(store.org + "-c")
    expected = Pipeline(_engine(), continuous_store, resume=False).run(IterableSource("t", events))

    first, second = events[:150], events[150:]
    Pipeline(_engine(), store).run(IterableSource("t", first))
    st = detection(store).get()
    assert st.cursor is not None and st.learning_start == T0
    resumed = Pipeline(_engine(), store)  # a new process: rebuilds the baseline and windows from the store
    assert resumed.engine.cursor == st.cursor
    resumed.run(IterableSource("t", second))
    got = {a.id for a in store.alerts.list(limit=10_000)}
    assert got == set(expected.alerts)
    assert any(i.startswith("al-") for i in got)


def test_hours_without_events_cost_nothing(store: Store) -> None:
    """A stray timestamp decades away must not make detection step through every hour in between."""
    far = [
        Flow(id="old", ts=datetime(1971, 1, 1, tzinfo=UTC), source="t", src_ip="10.0.0.5", dst_ip="10.0.0.9"),
        Flow(id="new", ts=T0, source="t", src_ip="10.0.0.5", dst_ip="10.0.0.9", dst_port=104),
    ]
    steps: list[object] = []
    pipe = Pipeline(_engine(), store, resume=False, on_step=steps.append)
    result = pipe.run(IterableSource("t", far))
    assert len(steps) == 2  # one step per hour that holds events, none for the 483,000 hours between
    assert set(result.alerts) == {"al-port-rule-new", "al-learner-new"}  # the 1971 hour was the learning


class PortLearner:
    """Learns the ports of the learning period; alerts on any other port. Its state is JSON."""

    name, version = "port-learner", "1"
    fits = 0

    def __init__(self) -> None:
        self.ports: set[int] = set()

    def fit(self, events: Iterable[Event]) -> None:
        PortLearner.fits += 1
        self.ports = {int(e.dst_port or 0) for e in events if isinstance(e, Flow)}

    def to_dict(self) -> dict[str, object]:
        return {"ports": sorted(self.ports)}

    def load_dict(self, data: dict[str, object]) -> None:
        self.ports = {int(p) for p in data["ports"]}  # type: ignore[attr-defined]

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        rule = PortRule()
        rule.name = self.name
        return rule.detect([e for e in events if getattr(e, "dst_port", None) not in self.ports])


def _learning_engine(hours: int) -> Engine:
    return Engine(
        [spec_for(PortRule()), spec_for(PortLearner(), needs="learning")],
        DetectorContext(),
        learning=timedelta(hours=hours),
    )


def _odd_port_flows(n: int) -> list[Flow]:
    # port 104 appears only after the first day: the learner never saw it
    return [
        dataclasses.replace(f, dst_port=104 if f.dst_port == 104 and i > 240 else 443)
        for i, f in enumerate(_flows(n))
    ]


def test_baselines_are_stored_once_learnt_and_loaded_not_refitted_on_a_restart(store: Store) -> None:
    events = _odd_port_flows(400)
    expected = Pipeline(_learning_engine(6), store.for_org(store.org + "-c"), resume=False).run(
        IterableSource("t", events)
    )
    PortLearner.fits = 0
    Pipeline(_learning_engine(6), store).run(IterableSource("t", events[:150]))  # past the 6-hour learning
    assert PortLearner.fits == 1
    stored = detection(store).baselines()
    assert stored == {"port-learner": ("1", {"ports": [443]})}
    resumed = Pipeline(_learning_engine(6), store)  # a restarted worker
    status = {s.name: s for s in resumed.engine.status()}
    assert status["port-learner"].state == "running"
    assert status["port-learner"].detail == "baseline loaded from the store"
    resumed.run(IterableSource("t", events[150:]))
    assert PortLearner.fits == 1, "the restarted pipeline refitted instead of loading the stored baseline"
    got = {a.id for a in store.alerts.list(limit=10_000)}
    assert got == set(expected.alerts) and any(i.startswith("al-port-learner") for i in got)


def test_a_worker_killed_during_learning_resumes_without_loss(store: Store) -> None:
    events = _odd_port_flows(400)
    expected = Pipeline(_learning_engine(24), store.for_org(store.org + "-c"), resume=False).run(
        IterableSource("t", events)
    )
    PortLearner.fits = 0
    Pipeline(_learning_engine(24), store).run(IterableSource("t", events[:150]))  # 17.5 h: still learning
    assert PortLearner.fits == 0 and detection(store).baselines() == {}
    Pipeline(_learning_engine(24), store).run(IterableSource("t", events[150:]))
    assert PortLearner.fits == 1  # learnt once, from the whole stored learning day
    assert detection(store).baselines()["port-learner"][1] == {"ports": [443]}
    assert {a.id for a in store.alerts.list(limit=10_000)} == set(expected.alerts)


def test_a_baseline_of_another_version_is_refitted_not_loaded(store: Store) -> None:
    detection(store).save_baselines([("port-learner", "0", {"ports": []})])
    engine = _learning_engine(6)
    assert engine.load_baselines(detection(store).baselines()) == []
    assert engine.load_baselines({"port-learner": ("1", {"nonsense": 1})}) == []  # refused: refit instead


def test_allowed_lateness_keeps_an_hour_open_for_late_events(store: Store) -> None:
    from healthsec.config import Settings

    def f(i: str, minutes: int, port: int = 443) -> Flow:
        return Flow(
            id=i,
            ts=T0 + timedelta(minutes=minutes),
            source="t",
            src_ip="10.0.0.5",
            dst_ip="10.0.0.9",
            dst_port=port,
        )

    def detected(lateness: float, org: str) -> set[str]:
        s = store.for_org(org)
        pipe = Pipeline(_engine(), s, settings=Settings(detection_lateness_s=lateness))
        for batch in ([f("a", 10, 104), f("b", 65)], [f("late", 50, 104)], [f("c", 140)]):
            pipe.accept(batch)
            pipe.advance()
        return {a.id for a in s.alerts.list(limit=100)}

    # without lateness hour 0 closes when 01:05 arrives: the 00:50 event is stored but never detected
    assert "al-port-rule-late" not in detected(0.0, store.org + "-l0")
    # ten minutes of allowed lateness: hour 0 waits for 01:10 of event time, so the late event counts
    assert "al-port-rule-late" in detected(600.0, store.org + "-l10")
