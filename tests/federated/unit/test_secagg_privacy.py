"""Pairwise masking sums right (also after a drop-out) and hides single updates; the accountant calibrates."""

from __future__ import annotations

import numpy as np
import pytest

from healthsec.detect.ml.features import FeatureSchema
from healthsec.federated import secagg
from healthsec.federated.artefact import FedSpec
from healthsec.federated.client import HospitalClient, Privacy
from healthsec.federated.privacy import calibrate, spent

from .conftest import member_data


def _setup(n: int) -> tuple[list, bytes]:
    keys = [secagg.new_keypair() for _ in range(n)]
    return [sk for sk, _ in keys], b"".join(pk for _, pk in keys)


def test_masked_updates_sum_to_the_weighted_mean() -> None:
    rng = np.random.default_rng(0)
    updates = [[rng.normal(size=(3, 2)), rng.normal(size=2)] for _ in range(4)]
    weights = [0.1, 0.3, 0.2, 0.4]
    sks, blob = _setup(4)
    masked = [
        secagg.mask_update(u, w, i, blob, sks[i], b"r1", 8.0, rng)
        for i, (u, w) in enumerate(zip(updates, weights, strict=True))
    ]
    total, weight = secagg.unmask_sum(masked, [], 4, 8.0)
    want = sum(w * secagg.flatten(u) for u, w in zip(updates, weights, strict=True)) / sum(weights)
    assert weight == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(total / weight, want, atol=1e-4)
    # one masked vector alone says nothing: it is far from the member's quantized update
    alone, _ = secagg.unmask_sum(masked[:1], [], 1, 8.0)
    assert np.abs(alone - weights[0] * secagg.flatten(updates[0])).max() > 1.0


def test_dropout_recovery_removes_the_missing_members_masks() -> None:
    rng = np.random.default_rng(1)
    updates = [[rng.normal(size=5)] for _ in range(4)]
    sks, blob = _setup(4)
    masked = {i: secagg.mask_update(updates[i], 0.25, i, blob, sks[i], b"r2", 8.0, rng) for i in (0, 1, 3)}
    size = masked[0].size
    shares = [secagg.recovery_share(i, blob, sks[i], b"r2", [2], size) for i in (0, 1, 3)]
    total, weight = secagg.unmask_sum(list(masked.values()), shares, 3, 8.0)
    want = sum(secagg.flatten(updates[i]) for i in (0, 1, 3)) / 3
    assert np.allclose(total / weight, want, atol=1e-4)
    # without the recovery shares the sum is garbage
    bad, _ = secagg.unmask_sum(list(masked.values()), [], 3, 8.0)
    assert np.abs(bad).max() > 10


def test_bad_inputs_are_refused_with_a_reason() -> None:
    sks, blob = _setup(2)
    rng = np.random.default_rng(0)
    with pytest.raises(secagg.SecAggError, match="NaN"):
        secagg.mask_update([np.array([np.nan])], 1.0, 0, blob, sks[0], b"t", 8.0, rng)
    with pytest.raises(secagg.SecAggError, match="multiple of 32"):
        secagg.mask_update([np.zeros(2)], 1.0, 0, blob[:40], sks[0], b"t", 8.0, rng)
    with pytest.raises(secagg.SecAggError, match="expected 3 uint64"):
        secagg.unmask_sum([np.zeros(3, np.uint64), np.zeros(4, np.uint64)], [], 2, 8.0)
    with pytest.raises(secagg.SecAggError, match="cannot reveal"):
        secagg.recovery_share(0, blob, sks[0], b"t", [0], 3)


def test_calibrated_noise_spends_the_target_epsilon() -> None:
    parts = [(0.05, 200), (0.1, 100)]
    sigma = calibrate(3.0, 1e-5, parts)
    assert spent(parts, sigma, 1e-5) <= 3.0
    assert spent(parts, sigma * 0.97, 1e-5) > 2.9  # not wastefully noisy
    assert spent(parts[:1], sigma, 1e-5) < spent(parts, sigma, 1e-5)
    with pytest.raises(ValueError, match="positive"):
        calibrate(0.0, 1e-5, parts)


def test_the_accountant_is_tighter_than_rdp_and_never_below_the_exact_gaussian() -> None:
    from dp_accounting import dp_event, rdp
    from scipy.stats import norm

    parts = [(0.2, 220), (0.25, 100)]
    acc = rdp.RdpAccountant(orders=[1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 12, 16, 20, 32, 64])
    for q, steps in parts:
        acc.compose(dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(1.7)), steps)
    assert 0.6 * acc.get_epsilon(1e-5) < spent(parts, 1.7, 1e-5) < acc.get_epsilon(1e-5)
    # one full-batch Gaussian step: exact delta(eps) (Balle & Wang 2018); ours may only overstate eps
    sigma, delta = 2.0, 1e-5
    eps = spent([(1.0, 1)], sigma, delta)

    def exact_delta(e: float) -> float:
        return float(norm.cdf(0.5 / sigma - e * sigma) - np.exp(e) * norm.cdf(-0.5 / sigma - e * sigma))

    assert exact_delta(eps) <= delta and exact_delta(eps * 0.9) > delta


def test_a_noisier_autoencoder_leaves_budget_to_the_classifier(schema: FeatureSchema) -> None:
    with pytest.raises(ValueError, match="noise scale must be positive"):
        spent([(0.05, 200, 0.0)], 1.0, 1e-5)
    same = [(0.05, 200, 1.0), (0.1, 100, 1.0)]
    noisier = [(0.05, 200, 1.0), (0.1, 100, 4.0)]
    assert spent(same, 1.0, 1e-5) == spent([(0.05, 200), (0.1, 100)], 1.0, 1e-5)
    assert spent(noisier, 1.0, 1e-5) < spent(same, 1.0, 1e-5)
    base = calibrate(8.0, 1e-5, noisier)
    assert base < calibrate(8.0, 1e-5, same)  # less noise on the classifier at the same epsilon
    assert spent(noisier, base, 1e-5) <= 8.0
    spec = FedSpec(dim=len(schema.dense_names))
    dp = HospitalClient(
        name="h",
        data=member_data(schema, 1, n=4000),
        schema=schema,
        privacy=Privacy(8.0, autoencoder_noise=4.0),
    )
    clf, ae = dp._parts(spec, dp._recipe(spec), 1)
    assert (clf[2], ae[2]) == (1.0, 4.0)  # the accountant is told the autoencoder's own noise


def test_dp_members_train_with_their_own_batch_and_account_for_it(schema: FeatureSchema) -> None:
    spec = FedSpec(dim=len(schema.dense_names))
    data = member_data(schema, 1, n=4000)
    dp = HospitalClient(name="h", data=data, schema=schema, privacy=Privacy(3.0, batch=1024))
    recipe = dp._recipe(spec)
    assert (recipe.batch, recipe.clip) == (1024, 1.0)
    assert recipe.lr == pytest.approx(spec.train.lr * 1024 / spec.train.batch)
    # the accountant is told the rate and steps the member really trains with
    assert dp._parts(spec, recipe, 1)[0] == (1024 / 4000, round(2 * 4000 / 1024), 1.0)
    plain = HospitalClient(name="p", data=data, schema=schema, privacy=Privacy(None))
    assert plain._recipe(spec) == spec.train  # without DP the coordinator's recipe, unclipped
