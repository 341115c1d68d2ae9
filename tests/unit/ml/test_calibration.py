"""Category probabilities are calibrated on the validation split by temperature scaling."""

from __future__ import annotations

import numpy as np

from healthsec.detect.ml.supervised import apply_temperature, fit_temperature


def test_overconfident_model_gets_softened_and_argmax_is_kept() -> None:
    rng = np.random.default_rng(0)
    n, k = 2000, 4
    y = rng.integers(0, k, n)
    # a model right 60 % of the time but claiming 97 % confidence
    pred = np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n))
    proba = np.full((n, k), 0.01)
    proba[np.arange(n), pred] = 0.97
    t = fit_temperature(proba, y)
    assert t > 1.5
    calibrated = apply_temperature(proba, t)
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    assert (calibrated.argmax(axis=1) == proba.argmax(axis=1)).all()
    confidence = calibrated.max(axis=1).mean()
    accuracy = (calibrated.argmax(axis=1) == y).mean()
    assert abs(confidence - accuracy) < 0.05


def test_no_usable_validation_rows_keeps_temperature_one() -> None:
    assert fit_temperature(np.full((3, 2), 0.5), np.array([-1, -1, -1])) == 1.0
