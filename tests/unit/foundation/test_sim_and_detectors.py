"""The simulator is seeded and labelled; each foundation detector catches its campaign, not the benign day."""

from __future__ import annotations

from collections import Counter

import pytest

from healthsec.detect.registry import DetectorContext, instantiate
from healthsec.sim import CAMPAIGNS, simulate
from healthsec.sim.evaluate import alert_campaign


@pytest.fixture(scope="module")
def days():  # type: ignore[no-untyped-def]
    base = simulate(5, day=0, campaigns=())
    return base, simulate(5, day=1, hospital=base.hospital)


def test_simulation_is_deterministic_and_labels_are_apart(days) -> None:  # type: ignore[no-untyped-def]
    base, day = days
    again = simulate(5, day=1, hospital=base.hospital)
    assert [e.id for e in again.events] == [e.id for e in day.events]
    assert all(v is None for v in base.labels.values())
    assert set(Counter(v for v in day.labels.values() if v)) == set(CAMPAIGNS)
    kinds = Counter(e.kind for e in day.events)
    assert {"flow", "log", "reading", "access", "clinical"} <= set(kinds)
    zones = {a.zone for a in day.assets}
    assert {"clinical", "devices", "imaging", "ehr", "admin", "dmz"} <= zones
    assert [e.ts for e in day.events] == sorted(e.ts for e in day.events)


def test_unknown_campaign_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown campaign 'heist'"):
        simulate(1, campaigns=("heist",))


def test_each_detector_fires_on_its_campaign_and_stays_quiet_on_benign(days) -> None:  # type: ignore[no-untyped-def]
    base, day = days
    expected = {
        "flow-iforest": "ransomware",
        "flow-beacon": "ransomware",
        "auth-bruteforce": "credential_bruteforce",
        "auth-lateral-logon": "ransomware",
        "host-rules": "ransomware",
        "clinical.access": "insider_snooping",  # its care-relationship part (no FHIR context here)
        "clinical.telemetry": "device_spoofing",
        "dicom": "pacs_exfiltration",  # its misuse part
    }
    benign_next_day = simulate(5, day=2, campaigns=(), hospital=base.hospital)
    quiet_detectors = [
        d for d in instantiate(DetectorContext(assets=tuple(day.assets), seed=5)) if d.name in expected
    ]
    for det in quiet_detectors:
        det.fit(base.events)
        quiet = det.detect(benign_next_day.events)
        assert len(quiet) <= 3, (det.name, [a.title for a in quiet])
    for det in [
        d for d in instantiate(DetectorContext(assets=tuple(day.assets), seed=5)) if d.name in expected
    ]:
        det.fit(base.events)
        alerts = det.detect(day.events)
        hits = Counter(alert_campaign(a, day.labels) for a in alerts)
        assert hits[expected[det.name]] >= 1, (det.name, hits)
        for a in alerts:
            assert a.explanation and a.evidence
            assert a.detector == det.name or a.detector.startswith(det.name + ".")
