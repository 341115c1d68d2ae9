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
from healthsec.detect.clinical.dicom import DicomDetector
from healthsec.detect.clinical.hl7 import HL7Detector
from healthsec.detect.ml.netflow_baseline import BeaconDetector
from healthsec.detect.rules.auth import LogonNoveltyDetector
from healthsec.pipeline import Detection
from healthsec.sim import simulate
from healthsec.store import Store
from healthsec.store.detection import detection

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
PG_URL = os.environ.get("HEALTHSEC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PERSISTED = ("auth-lateral-logon", "flow-beacon", "hl7", "dicom")


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.open(PG_URL, f"bl-{uuid.uuid4().hex[:10]}")
    yield s
    s.close()


def _detection(store: Store, owner: str) -> Detection:
    settings = load_settings(db=PG_URL, detectors=("host-rules", *PERSISTED), sigma_rules=())
    return Detection(store, settings, owner=owner)


def test_a_restarted_worker_loads_the_stored_baselines(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    base = simulate(5, day=0, campaigns=())
    day = simulate(5, day=1, hospital=base.hospital)
    events = sorted(base.events + day.events, key=lambda e: (e.ts, e.id))
    cut = len(base.events) + len(day.events) // 2

    reference = store.for_org(store.org + "-ref")
    one = _detection(reference, "ref")
    one.accept(reference.org, events)
    one.tick(final=True)
    expected = {a.id for a in reference.alerts.list(limit=100_000)}

    first = _detection(store, "w1")
    first.accept(store.org, events[:cut])
    first.tick()
    stored = detection(store).baselines()
    assert set(stored) == set(PERSISTED), "every persistable learning detector stored its baseline"
    assert all(isinstance(state, dict) and state for _, state in stored.values())
    first.release()  # the worker stops (a killed one's lease lapses; the next owner does the same)

    def no_refit(self: object, events: object) -> None:
        raise AssertionError("refitted instead of loading the stored baseline")

    for cls in (LogonNoveltyDetector, BeaconDetector, HL7Detector, DicomDetector):
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
