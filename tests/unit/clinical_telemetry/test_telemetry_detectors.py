"""Physiological plausibility, vitals consistency and the per-device behavioural baseline."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from healthsec.detect.clinical import telemetry_physio
from healthsec.detect.clinical.telemetry import TelemetryBaselineDetector
from healthsec.model import DeviceReading

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def reading(i: int, ts: datetime, device: str = "mon-1", **metrics: float | None) -> DeviceReading:
    return DeviceReading(id=f"r{i}", ts=ts, source="test", device_id=device, metrics=metrics)


def test_physiology_rules() -> None:
    assert telemetry_physio.check({"hr": 72, "spo2": 98}) == []
    [f] = telemetry_physio.check({"hr": 400})
    assert (f.rule, f.metric) == ("implausible-vital", "heart_rate")
    [f] = telemetry_physio.check({"sbp": 80, "dbp": 95})
    assert f.rule == "inconsistent-vitals"
    [f] = telemetry_physio.check({"systolic": 120, "diastolic": 80, "map": 130})
    assert f.metric == "map"
    assert telemetry_physio.check({"systolic": 120, "diastolic": 80, "map": 93}) == []
    [f] = telemetry_physio.check({"heart_rate": 75, "pulse_rate": 140})
    assert f.metric == "pulse_rate"
    assert telemetry_physio.check({"temperature": 4.0}) == []  # a fridge, not a patient
    assert telemetry_physio.check({"spo2": None, "hr": None}) == []


def _normal(n: int = 400, device: str = "mon-1") -> list[DeviceReading]:
    rng = random.Random(1)
    return [
        reading(
            i,
            T0 + timedelta(seconds=5 * i + rng.random()),
            device,
            heart_rate=rng.gauss(75, 5),
            spo2=rng.gauss(97, 1),
        )
        for i in range(n)
    ]


def test_baseline_quiet_on_normal_and_loud_on_attacks() -> None:
    det = TelemetryBaselineDetector()
    det.fit(_normal())
    t1 = T0 + timedelta(seconds=2005)
    rng = random.Random(2)
    quiet = [
        reading(
            1000 + i,
            t1 + timedelta(seconds=5 * i + rng.random()),
            heart_rate=rng.gauss(75, 5),
            spo2=rng.gauss(97, 1),
        )
        for i in range(100)
    ]
    assert det.detect(quiet) == []
    t2 = t1 + timedelta(seconds=505)
    attack = [
        reading(2000, t2, heart_rate=400, spo2=97),  # impossible
        reading(2001, t2 + timedelta(seconds=5), heart_rate=75, pulse_rate=150, spo2=97),  # contradicting
        reading(2002, t2 + timedelta(seconds=10), heart_rate=160, spo2=97),  # plausible but never seen
    ]
    attack += [
        reading(3000 + i, t2 + timedelta(seconds=10.01 + 0.01 * i), heart_rate=75, spo2=97) for i in range(10)
    ]
    attack.append(reading(4000, t2 + timedelta(seconds=3600), heart_rate=75, spo2=97))
    rules = {a.features["rule"]: a for a in det.detect(attack)}
    assert set(rules) == {
        "implausible-vital",
        "inconsistent-vitals",
        "out-of-range",
        "message-flood",
        "telemetry-gap",
    }
    assert rules["implausible-vital"].evidence == ("r2000",)
    assert set(rules["out-of-range"].evidence) == {"r2000", "r2002"}
    assert len(rules["message-flood"].evidence) >= 5
    assert rules["telemetry-gap"].evidence == ("r4000",)
    assert rules["implausible-vital"].techniques == ("T0856",)


def test_score_one_is_pure_and_learning_can_be_gated() -> None:
    det = TelemetryBaselineDetector()
    det.fit(_normal())
    bad = reading(9, T0 + timedelta(seconds=2005), heart_rate=400, spo2=97)
    ok = reading(10, T0 + timedelta(seconds=2001), heart_rate=76, spo2=97)  # 5 s after the last one
    before = det.score_one(bad)
    assert before == 1.0
    assert det.score_one(ok) < 0.5
    assert det.score_one(bad) == before
    det.learn_one(bad, gate=0.5)  # refused: a poisoned reading does not widen the range
    assert det.range_findings(reading(11, T0, heart_rate=300)) != []


def test_devices_are_independent() -> None:
    det = TelemetryBaselineDetector()
    det.fit(_normal(device="a"))
    # Device b has no baseline yet: only physiology applies.
    assert det.detect([reading(1, T0, "b", heart_rate=160)]) == []
    assert [a.features["rule"] for a in det.detect([reading(2, T0, "b", heart_rate=999)])] == [
        "implausible-vital"
    ]


def test_one_lost_message_is_not_a_gap() -> None:
    det = TelemetryBaselineDetector()
    periodic = [reading(i, T0 + timedelta(seconds=5 * i), heart_rate=75.0, spo2=97.0) for i in range(100)]
    det.fit(periodic)
    later = T0 + timedelta(seconds=500)
    lost_one = [reading(200, later + timedelta(seconds=5)), reading(201, later + timedelta(seconds=15))]
    assert det.detect(lost_one) == []
    [gap] = det.detect([reading(202, later + timedelta(seconds=15 + 60))])
    assert gap.features["rule"] == "telemetry-gap"
