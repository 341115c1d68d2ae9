"""The faster scoring paths give the same numbers as the plain formulas they replace."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.neural_network import MLPRegressor

from healthsec.detect.ml.features import FeatureSchema
from healthsec.detect.ml.unsupervised import AutoencoderPart


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "bytes": [10.0, None, -3.0, 1e9, 0.0],
            "dur": [0.5, 1.0, None, 2.0, 0.0],
            "proto": ["tcp", "udp", "tcp", "never-seen", None],
        }
    )


def test_scaled_equals_standardised_dense_encoding() -> None:
    frame = _frame()
    schema = FeatureSchema.fit(frame.head(3), ["proto"])
    dense = schema.dense(frame)
    expected = (dense - np.asarray(schema.mean)) / np.asarray(schema.scale)
    np.testing.assert_array_equal(schema.scaled(frame), expected)
    num = np.array([[10.0, 0.5], [schema.medians[0], 1.0]])  # a missing number takes the benign median
    np.testing.assert_array_equal(dense[:2, :2], np.sign(num) * np.log1p(np.abs(num)))
    assert dense[3, 2:].tolist() == [0.0, 0.0, 1.0]  # an unseen category goes to "(other)"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_autoencoder_forward_pass_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    ae = MLPRegressor(hidden_layer_sizes=(4, 2, 4), max_iter=20, random_state=0).fit(x, x)
    part = AutoencoderPart(model=ae)
    np.testing.assert_allclose(part.reconstruct(x), ae.predict(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(part.score(x), ((ae.predict(x) - x) ** 2).mean(axis=1), rtol=1e-12)
