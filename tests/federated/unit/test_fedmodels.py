"""The numpy models: gradients match finite differences, clipping bounds each row, bad updates named."""

from __future__ import annotations

import numpy as np
import pytest

from healthsec.detect.ml.fedmodels import (
    AUTOENCODER,
    CLASSIFIER,
    TrainConfig,
    check_update,
    clipped_gradient_sum,
    init_params,
    loss,
    shapes,
    train_local,
)


@pytest.mark.parametrize("kind", [CLASSIFIER, AUTOENCODER])
def test_gradient_matches_finite_differences(kind: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 5))
    y = (rng.random(7) < 0.5).astype(float) if kind == CLASSIFIER else None
    params = init_params(kind, 5, 4, seed=1)
    params = [p + rng.normal(0, 0.1, p.shape) for p in params]  # non-zero biases too
    grads, _ = clipped_gradient_sum(kind, params, x, y, clip=0.0)
    eps = 1e-6
    for k, p in enumerate(params):
        for idx in [tuple(0 for _ in p.shape), tuple(s - 1 for s in p.shape)]:
            plus = [q.copy() for q in params]
            minus = [q.copy() for q in params]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            numeric = (loss(kind, plus, x, y) - loss(kind, minus, x, y)) / (2 * eps) * len(x)
            assert grads[k][idx] == pytest.approx(numeric, rel=1e-4, abs=1e-7)


def test_clipping_bounds_every_row() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 20, size=(50, 6))
    y = np.ones(50)
    params = init_params(CLASSIFIER, 6, 8, seed=0)
    _, norms = clipped_gradient_sum(CLASSIFIER, params, x, y, clip=0.0)
    assert norms.max() > 1.0  # the rows really need clipping
    # one row at a time: the clipped gradient of a single row has norm <= C
    for i in range(5):
        g, _ = clipped_gradient_sum(CLASSIFIER, params, x[i : i + 1], y[i : i + 1], clip=0.5)
        assert np.sqrt(sum((a**2).sum() for a in g)) <= 0.5 + 1e-9


def test_dp_noise_changes_the_result_and_plain_training_learns() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] > 0).astype(float)
    p0 = init_params(CLASSIFIER, 3, 4, seed=0)
    plain = train_local(CLASSIFIER, p0, x, y, TrainConfig(epochs=5), np.random.default_rng(1))
    noisy = train_local(
        CLASSIFIER, p0, x, y, TrainConfig(epochs=5, clip=1.0, noise_multiplier=1.0), np.random.default_rng(1)
    )
    assert loss(CLASSIFIER, plain, x, y) < loss(CLASSIFIER, p0, x, y) - 0.2
    assert not np.allclose(plain[0], noisy[0])


def test_check_update_names_the_problem() -> None:
    expected = shapes(CLASSIFIER, 3, 2)
    good = [np.zeros(s) for s in expected]
    assert check_update(good, expected) is None
    assert check_update(good[:3], expected) == "3 arrays, expected 4"
    wrong = [np.zeros((4, 2)), *good[1:]]
    assert check_update(wrong, expected) == "array 0 has shape (4, 2), expected (3, 2)"
    nan = [a.copy() for a in good]
    nan[2][0, 0] = np.nan
    nan[2][1, 0] = np.inf
    assert check_update(nan, expected) == "array 2 holds 2 NaN/infinite values"
