"""A small NSL-KDD model shared by the ML tests (trained once on subsets to stay quick)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from healthsec.detect.ml.ensemble import FlowEnsemble
from healthsec.ingest.flows import FlowTable, read_table


@pytest.fixture(scope="session")
def kdd_train(shared_data: Path) -> FlowTable:
    return read_table(shared_data / "nsl-kdd" / "KDDTrain+_20Percent.txt.gz", "nsl-kdd")


@pytest.fixture(scope="session")
def kdd_test(shared_data: Path) -> FlowTable:
    return read_table(shared_data / "nsl-kdd" / "KDDTest+.txt.gz", "nsl-kdd")


@pytest.fixture(scope="session")
def small_model(kdd_train: FlowTable) -> FlowEnsemble:
    idx = np.random.default_rng(1).choice(len(kdd_train), 6000, replace=False)
    assert kdd_train.labels is not None
    labels = [kdd_train.labels[i] for i in idx]
    return FlowEnsemble.train(kdd_train.frame[idx.tolist()], kdd_train.categorical, labels, fpr=0.05, seed=0)
