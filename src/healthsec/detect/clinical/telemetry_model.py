"""Supervised telemetry detection (LightGBM) from readings and their behaviour; LightGBM text plus JSON."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from healthsec.detect.clinical.telemetry_features import (
    BEHAVIOUR,
    FEATURE_SETS,
    VALUES,
    WINDOW,
    feature_names,
    features,
    value_matrix,
)
from healthsec.model import Alert, DeviceReading, Entity, EntityKind, EntityRole, Severity, stable_id

BENIGN = "benign"
_BENIGN_NAMES = {"normal", "benign", "0", ""}
FORMAT_VERSION = 2


def class_name(label: int | None, attack_type: str | None) -> str:
    """The training class of a row: the attack type when given, else attack/benign from the 0/1 label."""
    kind = (attack_type or "").strip().lower()
    if kind in _BENIGN_NAMES:
        if label == 1:
            return "attack"
        return BENIGN
    return kind


@dataclass(frozen=True)
class Predictions:
    """One row per input reading, in order: ``score`` = P(attack), ``is_attack`` 0/1, ``predicted`` class."""

    score: npt.NDArray[np.float64]
    is_attack: npt.NDArray[np.int64]
    predicted: list[str]


def feature_matrix(readings: Sequence[DeviceReading], features: Sequence[str]) -> npt.NDArray[np.float64]:
    """Reading values only, one column per metric (the input of the RandomForest baseline)."""
    return value_matrix(readings, features)


# Candidates tried by cross-validation inside the training data: the feature set (values alone, or values
# and their behaviour over time) x the trees' shape x whether benign and attack rows weigh the same.
PARAM_SETS: dict[str, dict[str, Any]] = {
    "default": {"num_leaves": 31, "min_data_in_leaf": 5},
    "fine": {"num_leaves": 127, "min_data_in_leaf": 2, "max_bin": 1023, "min_data_in_bin": 1},
}
CV_FOLDS = 3


@dataclass(frozen=True)
class Candidate:
    feature_set: str
    params: str
    balance: bool

    @property
    def name(self) -> str:
        return f"{self.feature_set}/{self.params}/{'balanced' if self.balance else 'as-is'}"


CANDIDATES = tuple(
    Candidate(fs, ps, bal) for fs in FEATURE_SETS for ps in PARAM_SETS for bal in (False, True)
)


def time_blocks(classes: Sequence[str], times: npt.NDArray[np.float64], folds: int) -> npt.NDArray[np.int64]:
    """Fold number of each row: each class's rows in time order cut into ``folds`` contiguous blocks, so a
    validation block never sits between training rows of its own session (no neighbour leaks)."""
    fold = np.zeros(len(classes), dtype=np.int64)
    arr = np.asarray(classes)
    for c in np.unique(arr):
        rows = np.flatnonzero(arr == c)
        rows = rows[np.argsort(times[rows], kind="stable")]
        fold[rows] = np.minimum(np.arange(len(rows)) * folds // max(len(rows), 1), folds - 1)
    return fold


def unique_rows(x: npt.NDArray[np.float64], classes: Sequence[str]) -> list[int]:
    """Indices of the first of each identical (feature row, class): copies on both sides of a split
    measure memory, not detection (TON_IoT repeats many rows exactly)."""
    seen: set[tuple[object, ...]] = set()
    keep = []
    for i, c in enumerate(classes):
        key = (c, np.nan_to_num(x[i], nan=np.inf).tobytes())
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return keep


class TelemetryClassifier:
    """Gradient-boosted trees over a device's readings and their behaviour; multi-class when attack types
    are known. ``fit`` picks the feature set and tree shape by time-blocked cross-validation on the
    training rows only (``select=False`` keeps the given ``feature_set``/params)."""

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        num_boost_round: int = 200,
        params: Mapping[str, Any] | None = None,
        seed: int = 0,
        balance: bool = True,
        feature_set: str = VALUES,
        select: bool = True,
    ) -> None:
        if feature_set not in FEATURE_SETS:
            raise ValueError(f"unknown feature set {feature_set!r}")
        self.threshold = threshold
        self.balance = balance
        self.num_boost_round = num_boost_round
        self.params = dict(params or {})
        self.seed = seed
        self.feature_set = feature_set
        self.select = select
        self.features: list[str] = []  # the metrics read from each reading
        self.classes: list[str] = []
        self.device_type: str | None = None
        self.cv_scores: dict[str, float] = {}
        self.cv_folds = CV_FOLDS
        self.rows = 0
        self.class_counts: dict[str, int] = {}
        self._booster: lgb.Booster | None = None  # P(attack)
        self._types: lgb.Booster | None = None  # which attack type, when there are several

    def fit(self, readings: Sequence[DeviceReading], classes: Sequence[str]) -> TelemetryClassifier:
        """Train on readings (any order; each device's stream is put in time order for the behaviour
        features); exact duplicate (feature row, class) rows are dropped first."""
        if len(readings) != len(classes):
            raise ValueError(f"{len(readings)} readings but {len(classes)} labels")
        if not readings:
            raise ValueError("no readings to train on")
        metrics = sorted({k for r in readings for k in r.metrics})
        if not metrics:
            raise ValueError("the readings carry no metric values to train on")
        mats = {fs: features(readings, metrics, fs) for fs in FEATURE_SETS}
        keep = unique_rows(mats[BEHAVIOUR], classes)
        times = np.array([readings[i].ts.timestamp() for i in keep])
        types = {r.device_type for r in readings if r.device_type}
        self.device_type = types.pop() if len(types) == 1 else None
        return self.fit_features(
            metrics, {fs: m[keep] for fs, m in mats.items()}, [classes[i] for i in keep], times
        )

    def fit_features(
        self,
        metrics: Sequence[str],
        mats: Mapping[str, npt.NDArray[np.float64]],
        classes: Sequence[str],
        times: npt.NDArray[np.float64] | None = None,
    ) -> TelemetryClassifier:
        """Train on feature matrices from :func:`features` (one per feature set, same rows)."""
        self.features = list(metrics)
        found = sorted(set(classes) - {BENIGN})
        if BENIGN not in classes or not found:
            raise ValueError("training needs both benign and attack rows")
        self.classes = [BENIGN, *found]
        y = np.array([self.classes.index(c) for c in classes])
        self.rows = len(y)
        self.class_counts = {c: int((y == k).sum()) for k, c in enumerate(self.classes)}
        attack = (y > 0).astype(np.int64)
        if self.select:
            order = times if times is not None else np.arange(len(y), dtype=np.float64)
            fold = time_blocks(classes, order, CV_FOLDS)
            best: tuple[float, int] | None = None
            for k, cand in enumerate(CANDIDATES):
                accs = []
                for f in range(CV_FOLDS):
                    tr, va = fold != f, fold == f
                    if len(np.unique(attack[tr])) < 2 or not va.any():
                        continue
                    booster = self._train(mats[cand.feature_set][tr], attack[tr], cand.params, cand.balance)
                    pred = self._score(booster, mats[cand.feature_set][va]) >= self.threshold
                    accs.append(float((attack[va] == pred).mean()))
                score = float(np.mean(accs)) if accs else 0.0
                self.cv_scores[cand.name] = round(score, 4)
                if best is None or score > best[0] + 1e-9:  # ties keep the earlier, simpler candidate
                    best = (score, k)
            if best is not None:
                chosen = CANDIDATES[best[1]]
                self.feature_set, self.balance = chosen.feature_set, chosen.balance
                self.params = {**PARAM_SETS[chosen.params], **self.params}
        x = mats[self.feature_set]
        self._booster = self._train(x, attack, None, self.balance)
        self._types = None
        if len(self.classes) > 2:  # names the attack type of a flagged reading; trained on attack rows only
            rows = y > 0
            self._types = self._train(x[rows], y[rows] - 1, None, False, n_class=len(self.classes) - 1)
        return self

    def _train(
        self,
        x: npt.NDArray[np.float64],
        y: npt.NDArray[np.int64],
        param_set: str | None,
        balance: bool,
        n_class: int = 2,
    ) -> lgb.Booster:
        params: dict[str, Any] = {
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_data_in_leaf": 5,
            "verbosity": -1,
            "num_threads": 1,
            "seed": self.seed,
            "deterministic": True,
        }
        if n_class > 2:
            params.update(objective="multiclass", num_class=n_class)
        else:
            params.update(objective="binary")
        params.update(PARAM_SETS[param_set] if param_set else self.params)
        weight = None
        attack = y > 0
        if balance and n_class == 2 and 0 < attack.mean() < 1:  # benign and attack weigh the same in total
            weight = np.where(attack, 0.5 / attack.mean(), 0.5 / (1.0 - attack.mean()))
        data = lgb.Dataset(
            x,
            label=y,
            weight=weight,
            feature_name=[f"f{i}" for i in range(x.shape[1])],
            params={k: params[k] for k in ("max_bin", "min_data_in_bin") if k in params},
        )
        return lgb.train(params, data, num_boost_round=self.num_boost_round)

    @staticmethod
    def _score(booster: lgb.Booster, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(booster.predict(x), dtype=np.float64)

    def matrix(self, readings: Sequence[DeviceReading]) -> npt.NDArray[np.float64]:
        """The model's input for these readings (each device's stream in time order)."""
        return features(readings, self.features, self.feature_set)

    def predict(
        self, readings: Sequence[DeviceReading], context: Sequence[DeviceReading] = ()
    ) -> Predictions:
        """One prediction per reading. ``context``: earlier readings (e.g. the end of the previous batch
        of a stream) that give the first readings of each device their history; not scored."""
        if not readings:
            if self._booster is None:
                raise RuntimeError("the classifier is not trained")
            return Predictions(np.zeros(0), np.zeros(0, dtype=np.int64), [])
        x = self.matrix([*context, *readings])[len(context) :]
        return self.predict_features(x)

    @staticmethod
    def history(readings: Sequence[DeviceReading]) -> list[DeviceReading]:
        """The last readings of each device that the behaviour features look back on (context for the
        next batch of a stream)."""
        last: dict[str, list[DeviceReading]] = defaultdict(list)
        for r in sorted(readings, key=lambda r: r.ts):
            last[r.device_id] = [*last[r.device_id], r][-WINDOW:]
        return [r for rows in last.values() for r in rows]

    def predict_features(self, x: npt.NDArray[np.float64]) -> Predictions:
        if self._booster is None:
            raise RuntimeError("the classifier is not trained")
        score = self._score(self._booster, x)
        is_attack = (score >= self.threshold).astype(np.int64)
        if self._types is not None:
            kind = np.asarray(self._types.predict(x)).argmax(axis=1) + 1
        else:
            kind = np.ones(len(score), dtype=np.int64)
        predicted = [self.classes[int(c)] if a else BENIGN for a, c in zip(is_attack, kind, strict=True)]
        return Predictions(score, is_attack, predicted)

    # ----------------------------------------------------------------- safe persistence (no pickle)
    def model_text(self) -> str:
        if self._booster is None:
            raise RuntimeError("the classifier is not trained")
        return str(self._booster.model_to_string())

    def types_text(self) -> str | None:
        """The attack-type model as LightGBM text (``types.txt``), or None with a single attack type."""
        return None if self._types is None else str(self._types.model_to_string())

    def meta_json(self) -> str:
        return json.dumps(
            {
                "format": "healthsec.telemetry-classifier",
                "version": FORMAT_VERSION,
                "features": self.features,
                "feature_set": self.feature_set,
                "window": WINDOW,
                "classes": self.classes,
                "threshold": self.threshold,
                "device_type": self.device_type,
                "params": self.params,
                "balanced": self.balance,
                "cv_accuracy": self.cv_scores,
                "features_exclude": "date/time/hour and the gap between readings: never used",
            },
            indent=2,
        )

    @classmethod
    def from_parts(
        cls, meta_json: str, model_text: str, types_text: str | None = None
    ) -> TelemetryClassifier:
        meta = json.loads(meta_json)
        if meta.get("format") != "healthsec.telemetry-classifier":
            raise ValueError("not a healthsec telemetry model (meta.json format mismatch)")
        if meta.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"telemetry model version {meta.get('version')!r}, this healthsec reads {FORMAT_VERSION}: "
                "train it again with `healthsec train telemetry`"
            )
        feature_set = str(meta.get("feature_set", VALUES))
        if feature_set not in FEATURE_SETS or meta.get("window", WINDOW) != WINDOW:
            raise ValueError(f"meta.json names feature set {feature_set!r} that this version cannot build")
        self = cls(threshold=float(meta["threshold"]), feature_set=feature_set, select=False)
        self.features = [str(f) for f in meta["features"]]
        self.classes = [str(c) for c in meta["classes"]]
        self.device_type = meta.get("device_type")
        self._booster = lgb.Booster(model_str=model_text)
        width = len(feature_names(self.features, feature_set))
        if self._booster.num_feature() != width:
            raise ValueError("model.txt and meta.json disagree on the number of features")
        if len(self.classes) > 2:
            if types_text is None:
                raise ValueError("meta.json names several attack types but types.txt is missing")
            self._types = lgb.Booster(model_str=types_text)
            if self._types.num_feature() != width:
                raise ValueError("types.txt and meta.json disagree on the number of features")
        return self


def dedupe(readings: Sequence[DeviceReading], classes: Sequence[str]) -> list[int]:
    """Indices of the first of each identical (values, class) row: TON_IoT repeats many rows exactly, and a
    split that puts copies on both sides measures memory, not detection."""
    seen: set[tuple[object, ...]] = set()
    keep = []
    for i, (r, c) in enumerate(zip(readings, classes, strict=True)):
        key = (c, *sorted(r.metrics.items()))
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return keep


def alerts_from_predictions(
    readings: Sequence[DeviceReading], predictions: Predictions, *, detector: str = "clinical.telemetry-model"
) -> list[Alert]:
    """One alert per device, predicted class and clock hour, from the readings the model flags."""
    groups: dict[tuple[str, str, datetime], list[int]] = defaultdict(list)
    for i, r in enumerate(readings):
        if predictions.is_attack[i]:
            hour = r.ts.replace(minute=0, second=0, microsecond=0)
            groups[(r.device_id, predictions.predicted[i], hour)].append(i)
    alerts = []
    for (device, cls, hour), rows in groups.items():
        scores = predictions.score[rows]
        top = rows[int(np.argmax(scores))]
        values = ", ".join(f"{k}={v:g}" for k, v in readings[top].metrics.items() if v is not None)
        alerts.append(
            Alert(
                id=stable_id("alert", detector, device, cls, hour.isoformat()),
                ts=readings[rows[-1]].ts,
                detector=detector,
                detector_version=str(FORMAT_VERSION),
                title=f"Telemetry classified as {cls} on {device}",
                score=round(float(scores.max()), 4),
                severity=Severity.HIGH if float(scores.max()) >= 0.9 else Severity.MEDIUM,
                explanation=(
                    f"{len(rows)} reading(s) of {device} in the hour from {hour:%Y-%m-%d %H:%M} "
                    f"scored as attack (class {cls}, top P(attack) {float(scores.max()):.2f} at {values}); "
                    f"the model sees reading values only"
                ),
                evidence=tuple(readings[i].id for i in rows[:500]),
                entities=(Entity(EntityKind.DEVICE, device, EntityRole.TARGET),),
                techniques=("T0856",),
                tactics=("impair-process-control",),
                features={"rule": "supervised-model", "class": cls, "readings": float(len(rows))},
            )
        )
    return alerts
