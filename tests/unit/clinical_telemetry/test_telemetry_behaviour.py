"""Behaviour features (changes, rates, rolling stats, cross-sensor) and the cross-validated model choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from healthsec.detect.clinical.telemetry_features import BEHAVIOUR, VALUES, feature_names, features
from healthsec.detect.clinical.telemetry_model import TelemetryClassifier, time_blocks, unique_rows
from healthsec.model import DeviceReading

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _reading(i: int, ts: datetime, device: str = "pump-1", **metrics: float | None) -> DeviceReading:
    return DeviceReading(id=f"r{device}{i}", ts=ts, source="t", device_id=device, metrics=metrics)


def test_changes_and_rates_follow_each_device_in_time_order() -> None:
    rows = [
        _reading(0, T0 + timedelta(seconds=10), x=5.0, y=1.0),
        _reading(1, T0, x=1.0, y=1.0),  # earlier, listed later: order comes from the clock
        _reading(2, T0 + timedelta(seconds=5), device="other", x=100.0, y=0.0),
        _reading(3, T0 + timedelta(seconds=20), x=5.0, y=2.0),
    ]
    x = features(rows, ["x", "y"], BEHAVIOUR)
    names = feature_names(["x", "y"], BEHAVIOUR)
    col = {n: i for i, n in enumerate(names)}
    assert np.isnan(x[1, col["x.delta"]])  # the device's first reading
    assert x[0, col["x.delta"]] == 4.0 and x[0, col["x.rate"]] == pytest.approx(0.4)
    assert np.isnan(x[2, col["x.delta"]])  # the other device does not borrow pump-1's history
    assert x[3, col["x.delta"]] == 0.0 and x[3, col["y.delta"]] == 1.0
    assert x[3, col["metrics_changed"]] == 1.0 and x[0, col["metrics_changed"]] == 1.0
    assert np.isnan(x[1, col["metrics_changed"]])
    assert x[3, col["x.mean"]] == pytest.approx((1 + 5 + 5) / 3)
    assert features(rows, ["x", "y"], VALUES).shape == (4, 2)


def test_the_calendar_is_never_a_feature() -> None:
    """Moving every reading by 40 days and 7 hours changes nothing the model sees."""
    rng = np.random.default_rng(0)
    base = [_reading(i, T0 + timedelta(seconds=3 * i), x=float(rng.normal())) for i in range(50)]
    moved = [_reading(i, r.ts + timedelta(days=40, hours=7), x=r.metrics["x"]) for i, r in enumerate(base)]
    np.testing.assert_array_equal(features(base, ["x"], BEHAVIOUR), features(moved, ["x"], BEHAVIOUR))
    assert not {"date", "time", "hour", "ts"} & set(feature_names(["x"], BEHAVIOUR))


def test_missing_metric_values_stay_missing() -> None:
    rows = [_reading(i, T0 + timedelta(seconds=i), x=None if i == 1 else float(i)) for i in range(3)]
    x = features(rows, ["x", "absent"], BEHAVIOUR)
    assert np.isnan(x[1, 0]) and np.isnan(x[:, 1]).all()


def _drift_stream(seed: int) -> tuple[list[DeviceReading], list[str]]:
    """Attack sessions ramp the value fast; the same values also occur in benign sessions, so only the
    behaviour (change per reading) tells them apart."""
    rng = np.random.default_rng(seed)
    readings, classes = [], []
    ts = T0
    for session in range(24):
        attack = session % 2 == 1
        level = rng.uniform(20, 30)
        for k in range(40):
            ts += timedelta(seconds=5)
            value = level + (0.8 * k if attack else rng.normal(0, 0.05)) + rng.normal(0, 0.05)
            value = 20 + (value - 20) % 15  # wrap: attack values fall in the benign range too
            readings.append(_reading(len(readings), ts, temp=round(value, 2)))
            classes.append("injection" if attack else "benign")
    return readings, classes


def test_cross_validation_chooses_behaviour_when_values_alone_cannot_tell() -> None:
    readings, classes = _drift_stream(0)
    model = TelemetryClassifier(num_boost_round=30).fit(readings, classes)
    assert model.feature_set == BEHAVIOUR
    assert max(v for k, v in model.cv_scores.items() if k.startswith("behaviour")) > max(
        v for k, v in model.cv_scores.items() if k.startswith("values")
    )
    test_r, test_c = _drift_stream(1)
    pred = model.predict(test_r)
    acc = float(np.mean(pred.is_attack == np.array([c != "benign" for c in test_c])))
    assert acc > 0.8
    again = TelemetryClassifier.from_parts(model.meta_json(), model.model_text(), model.types_text())
    np.testing.assert_allclose(again.predict(test_r).score, pred.score)


def test_time_blocks_keep_each_class_session_contiguous() -> None:
    classes = ["benign"] * 6 + ["ddos"] * 3
    times = np.array([5, 4, 3, 2, 1, 0, 10, 11, 12], dtype=float)
    fold = time_blocks(classes, times, 3)
    assert fold.tolist() == [2, 2, 1, 1, 0, 0, 0, 1, 2]


def test_unique_rows_keeps_the_first_of_identical_feature_rows() -> None:
    x = np.array([[1.0, np.nan], [1.0, np.nan], [1.0, 2.0], [1.0, np.nan]])
    assert unique_rows(x, ["benign", "benign", "benign", "ddos"]) == [0, 2, 3]


def test_readings_without_any_metric_are_refused() -> None:
    rows = [_reading(i, T0 + timedelta(seconds=i)) for i in range(4)]
    with pytest.raises(ValueError, match="no metric values"):
        TelemetryClassifier().fit(rows, ["benign", "ddos"] * 2)


def test_a_stream_scored_in_batches_scores_like_the_whole_stream() -> None:
    readings, classes = _drift_stream(0)
    model = TelemetryClassifier(num_boost_round=20, feature_set=BEHAVIOUR, select=False).fit(
        readings, classes
    )
    whole = model.predict(readings).score
    context: list[DeviceReading] = []
    parts = []
    for start in range(0, len(readings), 37):
        batch = readings[start : start + 37]
        parts.append(model.predict(batch, context).score)
        context = model.history([*context, *batch])
    np.testing.assert_allclose(np.concatenate(parts), whole)
