"""A restarted worker loads the baselines its predecessor learnt (PostgreSQL), it does not refit them.

Two `Detection` instances (what `healthsec worker` runs) share a real PostgreSQL store: the first
learns the simulated hospital's benign day and detects part of the attack day, then stops; the second
takes the organisation over. The learning detectors' fit is made to fail in between, so a refit would
show as "learning failed"; the second must load every stored baseline and reach exactly the alerts of
one uninterrupted run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from healthsec.config import load_settings
from healthsec.detect.clinical.baseline import (
    CareRelationshipDetector,
    DicomMisuseDetector,
    TelemetryIntegrityDetector,
)
from healthsec.detect.clinical.dicom import DicomDetector
from healthsec.detect.clinical.hl7 import HL7Detector
from healthsec.detect.clinical.telemetry import TelemetryBaselineDetector
from healthsec.detect.ml.netflow_baseline import BeaconDetector, FlowAnomalyDetector
from healthsec.detect.rules.auth import LogonNoveltyDetector
from healthsec.pipeline import Detection
from healthsec.sim import simulate
from healthsec.store import Store
from healthsec.store.detection import detection

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
PG_URL = os.environ.get("HEALTHSEC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# every learning detector of the default profile (clinical.access runs its ADT care-relationship part here)
PERSISTED = (
    "auth-lateral-logon",
    "flow-iforest",
    "flow-beacon",
    "clinical.access",
    "clinical.telemetry",
    "hl7",
    "dicom",
)
FITTED = (
    LogonNoveltyDetector,
    FlowAnomalyDetector,
    BeaconDetector,
    CareRelationshipDetector,
    TelemetryIntegrityDetector,
    TelemetryBaselineDetector,
    HL7Detector,
    DicomDetector,
    DicomMisuseDetector,
)


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.open(PG_URL, f"bl-{uuid.uuid4().hex[:10]}")
    yield s
    s.close()


def _detection(store: Store, owner: str) -> Detection:
    settings = load_settings(db=PG_URL, detectors=("host-rules", *PERSISTED), sigma_rules=())
    return Detection(store, settings, owner=owner)


@pytest.fixture(scope="module")
def days() -> tuple[list[object], int]:
    base = simulate(5, day=0, campaigns=())
    day = simulate(5, day=1, hospital=base.hospital)
    return sorted(base.events + day.events, key=lambda e: (e.ts, e.id)), len(base.events)


@pytest.fixture(scope="module")
def expected(days: tuple[list[object], int]) -> set[str]:
    """The alerts of one uninterrupted run."""
    events, _ = days
    ref = Store.open(PG_URL, f"bl-ref-{uuid.uuid4().hex[:10]}")
    try:
        one = _detection(ref, "ref")
        one.accept(ref.org, events)  # type: ignore[arg-type]
        one.tick(final=True)
        return {a.id for a in ref.alerts.list(limit=100_000)}
    finally:
        ref.close()


def test_a_restarted_worker_loads_the_stored_baselines(
    store: Store, monkeypatch: pytest.MonkeyPatch, days: tuple[list[object], int], expected: set[str]
) -> None:
    events, learning = days
    cut = learning + (len(events) - learning) // 2  # in the middle of the attack day

    first = _detection(store, "w1")
    first.accept(store.org, events[:cut])
    first.tick()
    stored = detection(store).baselines()
    status = {s["name"]: (s["state"], s["detail"]) for s in detection(store).get().status or []}
    assert set(stored) == set(PERSISTED), status  # every learning detector stored its baseline
    assert all(isinstance(state, dict) and state for _, state in stored.values())
    first.release()  # the worker stops (a killed one's lease lapses; the next owner does the same)

    def no_refit(self: object, events: object) -> None:
        raise AssertionError("refitted instead of loading the stored baseline")

    for cls in FITTED:
        monkeypatch.setattr(cls, "fit", no_refit)
    second = _detection(store, "w2")
    second.accept(store.org, events[cut:])
    second.tick(final=True)
    status = {s["name"]: s for s in detection(store).get().status or []}
    for name in PERSISTED:
        assert status[name]["state"] == "running", status[name]
        assert status[name]["detail"] == "baseline loaded from the store"
    assert {a.id for a in store.alerts.list(limit=100_000)} == expected
    assert expected, "the attack day raised alerts"


def test_a_worker_killed_while_learning_resumes_without_loss(
    store: Store, days: tuple[list[object], int], expected: set[str]
) -> None:
    events, learning = days
    cut = learning // 2  # half-way through the learning day: nothing learnt yet
    first = _detection(store, "w1")
    first.accept(store.org, events[:cut])  # type: ignore[arg-type]
    first.tick()
    assert detection(store).baselines() == {}, "baselines are learnt once, when the learning period ends"
    status = {s["name"]: s for s in detection(store).get().status or []}
    assert status["flow-iforest"]["state"] == "learning"
    del first  # killed: no release; the next owner takes over when the lease lapses
    detection(store).release("w1")  # (what the lapse of detection_lease_s does, without the wait)

    second = _detection(store, "w2")
    second.accept(store.org, events[cut:])  # type: ignore[arg-type]
    second.tick(final=True)
    assert set(detection(store).baselines()) == set(PERSISTED)
    assert {a.id for a in store.alerts.list(limit=100_000)} == expected
