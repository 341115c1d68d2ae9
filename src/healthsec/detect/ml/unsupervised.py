"""Unsupervised flow models fitted on benign traffic only: Isolation Forest and an autoencoder (MLP)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from healthsec.detect.ml.features import F64
from healthsec.detect.ml.native import Predict, compile_forest

# The only types a saved unsupervised model may hold beyond what skops trusts by default; anything
# else in a model file is refused (a partner's file is never unpickled).
TRUSTED_TYPES = (
    "sklearn.tree._tree.Tree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
)
AE_FIT_ROWS = 20_000  # benign rows the autoencoder trains on (subsampled, seeded)


class UnsafeModelError(ValueError):
    """A model file holds types we do not trust; it is not loaded."""


def safe_loads(data: bytes, name: str) -> Any:
    untrusted = sio.get_untrusted_types(data=data)
    unknown = [t for t in untrusted if t not in TRUSTED_TYPES]
    if unknown:
        raise UnsafeModelError(f"{name}: refuses to load untrusted types {', '.join(unknown)}")
    return sio.loads(data, trusted=list(untrusted))


@dataclass
class IsolationForestPart:
    """Isolation Forest on the scaled dense encoding; score = -score_samples (higher = more anomalous)."""

    model: IsolationForest | None = None
    name: str = "iforest"
    native: Predict | None = field(default=None, repr=False, compare=False)

    def fit(self, x: F64, seed: int = 0) -> None:
        self.model = IsolationForest(
            n_estimators=50, max_samples=min(256, x.shape[0]), random_state=seed, n_jobs=1
        ).fit(x)
        self.native = None

    def compile(self, cache_dir: Path | None = None) -> bool:
        """Native code for the forest's path lengths (lleaves over the trees written as a LightGBM
        model text, see :func:`forest_text`): the same scores, faster. False when unavailable."""
        assert self.model is not None, "fit or load the model first"
        self.native = compile_forest(forest_text(self.model), raw_score=True, cache_dir=cache_dir)
        return self.native is not None

    def score(self, x: F64) -> F64:
        assert self.model is not None, "fit or load the model first"
        if self.native is not None and x.shape[0]:
            # sklearn compares float32 inputs with float64 thresholds: the same rounding here
            depths = self.native(x.astype(np.float32).astype(np.float64))
            denominator = len(self.model.estimators_) * _average_path_length([self.model._max_samples])
            if float(denominator[0]) == 0:
                return np.ones(x.shape[0])
            out: F64 = 2 ** (-(depths / denominator))
            return out
        out = -np.asarray(self.model.score_samples(x), dtype=np.float64)
        return out

    def feature_deviation(self, x: F64) -> F64:
        """How far each feature lies from the benign mean, in benign standard deviations (|z|)."""
        return np.abs(x)


def forest_text(model: IsolationForest) -> str:
    """The forest as a LightGBM model text whose prediction is the summed path length of a row over
    all trees (each leaf holds its depth plus the average path length of its samples, minus one, as
    sklearn adds them): what lleaves compiles. Only for forests trained on all features."""
    n_features = int(model.n_features_in_)
    if model._max_features != n_features:
        raise ValueError("forest_text needs a forest trained on all features")
    head = [
        "tree",
        "version=v4",
        "num_class=1",
        "num_tree_per_iteration=1",
        "label_index=0",
        f"max_feature_idx={n_features - 1}",
        "objective=regression",
        "feature_names=" + " ".join(f"f{i}" for i in range(n_features)),
        "feature_infos=" + " ".join("[-1e+300:1e+300]" for _ in range(n_features)),
        "tree_sizes=" + " ".join("0" for _ in model.estimators_),  # lleaves counts the trees here
        "",
    ]
    blocks = []
    for t, est in enumerate(model.estimators_):
        tree = est.tree_
        left, right = tree.children_left, tree.children_right
        leaf_value = model._decision_path_lengths[t] + model._average_path_length_per_tree[t] - 1.0
        internal = [i for i in range(tree.node_count) if left[i] != -1]
        leaves = [i for i in range(tree.node_count) if left[i] == -1]
        node_ix = {n: j for j, n in enumerate(internal)}
        leaf_ix = {n: j for j, n in enumerate(leaves)}

        def child(n: int, node_ix: dict[int, int] = node_ix, leaf_ix: dict[int, int] = leaf_ix) -> str:
            return str(node_ix[n]) if n in node_ix else str(-leaf_ix[n] - 1)

        blocks += [
            f"Tree={t}",
            f"num_leaves={len(leaves)}",
            "num_cat=0",
            "split_feature=" + " ".join(str(int(tree.feature[n])) for n in internal),
            "threshold=" + " ".join(repr(float(tree.threshold[n])) for n in internal),
            "decision_type=" + " ".join("2" for _ in internal),
            "left_child=" + " ".join(child(int(left[n])) for n in internal),
            "right_child=" + " ".join(child(int(right[n])) for n in internal),
            "leaf_value=" + " ".join(repr(float(leaf_value[n])) for n in leaves),
            "shrinkage=1",
            "",
        ]
    return "\n".join([*head, *blocks, "end of trees", "", "pandas_categorical:null", ""])


@dataclass
class AutoencoderPart:
    """A bottleneck MLP trained to reproduce benign flows; score = mean squared reconstruction error.

    sklearn's MLPRegressor is enough here (no deep-learning framework needed): 32-8-32 units.
    """

    model: MLPRegressor | None = None
    name: str = "autoencoder"

    def fit(self, x: F64, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        if x.shape[0] > AE_FIT_ROWS:
            x = x[rng.choice(x.shape[0], AE_FIT_ROWS, replace=False)]
        ae = MLPRegressor(hidden_layer_sizes=(32, 8, 32), max_iter=60, early_stopping=True, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ae.fit(x, x)
        self.model = ae

    def reconstruct(self, x: F64) -> F64:
        """The network's output, computed from its weights directly: sklearn's ``predict`` re-validates
        the whole matrix first, which cost as much as the network itself in batch scoring."""
        assert self.model is not None, "fit or load the model first"
        ae = self.model
        if ae.activation != "relu" or ae.out_activation_ != "identity":
            return np.asarray(ae.predict(x), dtype=np.float64)
        a = np.asarray(x, dtype=np.float64)
        last = len(ae.coefs_) - 1
        for i, (w, b) in enumerate(zip(ae.coefs_, ae.intercepts_, strict=True)):
            a = a @ w
            a += b
            if i != last:
                np.maximum(a, 0.0, out=a)
        return a

    def feature_deviation(self, x: F64) -> F64:
        out: F64 = (self.reconstruct(x) - x) ** 2
        return out

    def score(self, x: F64) -> F64:
        d = self.reconstruct(x)
        d -= x
        out: F64 = np.einsum("ij,ij->i", d, d) / d.shape[1]
        return out


@dataclass
class UnsupervisedFlowModel:
    """Both parts, each with its alert threshold chosen on benign validation data for a stated FPR."""

    parts: dict[str, IsolationForestPart | AutoencoderPart] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    fpr: float = 0.05

    @classmethod
    def fit(cls, benign: F64, benign_val: F64, fpr: float = 0.05, seed: int = 0) -> UnsupervisedFlowModel:
        model = cls(parts={"iforest": IsolationForestPart(), "autoencoder": AutoencoderPart()}, fpr=fpr)
        for part in model.parts.values():
            part.fit(benign, seed=seed)
        model.set_thresholds(benign_val, fpr)
        return model

    def set_thresholds(self, benign_val: F64, fpr: float) -> None:
        """Threshold per part at the (1 - fpr) quantile of its scores on held-out benign flows."""
        self.fpr = fpr
        for name, part in self.parts.items():
            self.thresholds[name] = float(np.quantile(part.score(benign_val), 1.0 - fpr))

    def compile(self, cache_dir: Path | None = None) -> bool:
        """Native code for the Isolation Forest (the autoencoder is a few matrix products already)."""
        part = self.parts.get("iforest")
        return isinstance(part, IsolationForestPart) and part.compile(cache_dir)

    def margins(self, x: F64) -> dict[str, F64]:
        """score / threshold per part: 1.0 or more means the part fires."""
        out: dict[str, F64] = {}
        for name, part in self.parts.items():
            thr = self.thresholds[name]
            out[name] = part.score(x) / thr if thr > 0 else part.score(x)
        return out

    def score(self, x: F64) -> F64:
        """One anomaly score from both parts: the sum of their log margins (0 = on both thresholds)."""
        m = self.margins(x)
        out: F64 = np.sum([np.log(np.maximum(v, 1e-9)) for v in m.values()], axis=0)
        return out

    def to_artifacts(self) -> dict[str, bytes]:
        return {f"{name}.skops": sio.dumps(part.model) for name, part in self.parts.items()}

    def meta(self) -> dict[str, Any]:
        return {"thresholds": self.thresholds, "fpr": self.fpr}

    @classmethod
    def from_artifacts(cls, meta: Mapping[str, Any], files: Mapping[str, bytes]) -> UnsupervisedFlowModel:
        parts: dict[str, IsolationForestPart | AutoencoderPart] = {
            "iforest": IsolationForestPart(model=safe_loads(files["iforest.skops"], "iforest.skops")),
            "autoencoder": AutoencoderPart(model=safe_loads(files["autoencoder.skops"], "autoencoder.skops")),
        }
        return cls(parts=parts, thresholds=dict(meta["thresholds"]), fpr=float(meta["fpr"]))
