"""Small synthetic flow data in the shared feature schema, and members built on it."""

from __future__ import annotations

import os

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"

import numpy as np
import polars as pl
import pytest

from healthsec.detect.ml.features import FeatureSchema
from healthsec.federated.client import MemberData


def flows(n: int, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    """Attack rows are longer, bigger and mostly UDP; a learnable but noisy task."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(float)
    x = rng.normal(0, 1, (n, 4))
    x[:, 0] += 1.5 * y
    x[:, 1] -= 1.0 * y
    proto = np.where((y == 1) & (rng.random(n) < 0.7), "udp", "tcp")
    return pl.DataFrame({**{f"f{i}": x[:, i] for i in range(4)}, "proto": proto}), y


@pytest.fixture(scope="module")
def schema() -> FeatureSchema:
    frame, _ = flows(2000, 99)
    return FeatureSchema.fit(frame, ["proto"])


@pytest.fixture(scope="module")
def test_set(schema: FeatureSchema) -> tuple[np.ndarray, np.ndarray]:
    frame, y = flows(3000, 1234)
    return schema.scaled(frame), y


def member_data(schema: FeatureSchema, seed: int, n: int = 500) -> MemberData:
    frame, y = flows(n, seed)
    return MemberData(schema.scaled(frame), y)
