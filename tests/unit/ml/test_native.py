"""Native LightGBM (lleaves): the same predictions as LightGBM's, a private cache, and the fallback."""

from __future__ import annotations

import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest
from sklearn.ensemble import IsolationForest

from healthsec.detect.ml import native
from healthsec.detect.ml.features import FeatureSchema
from healthsec.detect.ml.supervised import SupervisedFlowModel
from healthsec.detect.ml.unsupervised import IsolationForestPart


def _model() -> tuple[SupervisedFlowModel, np.ndarray]:
    """A small model with a categorical feature, missing numbers and unseen categories."""
    rng = np.random.default_rng(0)
    n = 600
    proto = rng.choice(["tcp", "udp", "icmp"], n)
    frame = pl.DataFrame({"bytes": rng.lognormal(5, 2, n), "dur": rng.exponential(1, n), "proto": proto})
    frame = frame.with_columns(
        pl.when(pl.col("dur") > 2.5).then(None).otherwise(pl.col("bytes")).alias("bytes")
    )
    schema = FeatureSchema.fit(frame, ["proto"])
    x = schema.tree_matrix(frame)
    cls = np.where(np.nan_to_num(x[:, 0], nan=0) > 400, 1, 0) + (proto == "icmp")
    params = {"verbose": -1, "num_threads": 1, "num_leaves": 7, "min_data_in_leaf": 5, "seed": 0}
    binary = lgb.train(
        {**params, "objective": "binary"}, lgb.Dataset(x, cls > 0, categorical_feature=[2]), num_boost_round=8
    )
    category = lgb.train(
        {**params, "objective": "multiclass", "num_class": 3},
        lgb.Dataset(x, cls, categorical_feature=[2]),
        num_boost_round=4,
    )
    model = SupervisedFlowModel(
        schema=schema, binary=binary, calib_x=[0.0, 1.0], calib_y=[0.0, 1.0], category=category,
        classes=("benign", "dos", "probe"),
    )  # fmt: skip
    test = pl.DataFrame(
        {"bytes": [None, 1e9, 3.0, -1.0], "dur": [0.1, None, 5.0, 0.0], "proto": ["gre", "tcp", None, "udp"]}
    )
    return model, np.vstack([x, schema.tree_matrix(test)])


def test_compiled_predictions_equal_lightgbm() -> None:
    model, x = _model()
    plain_p, plain_c = model.raw_probability(x), model.categories(x)
    assert model.compile()
    assert set(model.native) == {"binary", "category"}
    np.testing.assert_allclose(model.raw_probability(x), plain_p, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        model.native["category"](x), model.category.predict(x, raw_score=True), atol=1e-9
    )  # type: ignore[union-attr]
    assert model.categories(x) == plain_c


def test_without_lleaves_lightgbm_predicts(monkeypatch: pytest.MonkeyPatch) -> None:
    model, x = _model()
    monkeypatch.setitem(sys.modules, "lleaves", None)  # import fails as when the extra is not installed
    assert not model.compile()
    assert model.native == {}
    np.testing.assert_array_equal(model.raw_probability(x), model.binary.predict(x))


def test_cache_is_private_and_keyed_by_the_model_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, x = _model()
    text = model.binary.model_to_string()
    cache = tmp_path / "cache"
    monkeypatch.setattr(native, "_COMPILED", {})  # nothing compiled yet in this process
    first = native.compile_forest(text, raw_score=False, cache_dir=cache)
    assert first is not None
    files = list(cache.iterdir())
    assert [f.name for f in files] == [f"lgb-{native.model_key(text, False)}.o"]
    assert files[0].stat().st_mode & 0o777 == 0o600
    assert cache.stat().st_mode & 0o777 == 0o700
    monkeypatch.setattr(native, "_COMPILED", {})  # a new process: loaded from our own cache
    again = native.compile_forest(text, raw_score=False, cache_dir=cache)
    assert again is not None
    np.testing.assert_allclose(again(x), model.binary.predict(x), atol=1e-9)
    # a directory others can write to is never used: nothing is loaded from it or written to it
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setattr(native, "_COMPILED", {})
    assert native.compile_forest(text, raw_score=False, cache_dir=shared) is not None
    assert list(shared.iterdir()) == []


def test_compiled_isolation_forest_scores_equal_sklearn() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 5))
    part = IsolationForestPart(model=IsolationForest(n_estimators=6, max_samples=128, random_state=0).fit(x))
    test = np.vstack([x, rng.normal(scale=4.0, size=(200, 5)), np.zeros((1, 5))])
    plain = part.score(test)
    assert part.compile()
    np.testing.assert_allclose(part.score(test), plain, rtol=0, atol=1e-9)
    np.testing.assert_allclose(plain, -part.model.score_samples(test), rtol=0, atol=0)  # type: ignore[union-attr]
