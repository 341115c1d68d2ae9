"""Supervised telemetry detection (LightGBM) from reading values only; saved as LightGBM text plus JSON."""

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

from healthsec.model import Alert, DeviceReading, Entity, EntityKind, EntityRole, Severity, stable_id

BENIGN = "benign"
_BENIGN_NAMES = {"normal", "benign", "0", ""}
FORMAT_VERSION = 1


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
    """Values only: no timestamps, no ordering (TON_IoT attack types sit on their own days, so time leaks)."""
    x = np.full((len(readings), len(features)), np.nan)
    index = {f: i for i, f in enumerate(features)}
    for row, r in enumerate(readings):
        for name, value in r.metrics.items():
            col = index.get(name)
            if col is not None and value is not None:
                x[row, col] = value
    return x


class TelemetryClassifier:
    """Gradient-boosted trees over a device's reading values; multi-class when attack types are known."""

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        num_boost_round: int = 200,
        params: Mapping[str, Any] | None = None,
        seed: int = 0,
        balance: bool = True,
    ) -> None:
        self.threshold = threshold
        self.balance = balance
        self.num_boost_round = num_boost_round
        self.params = dict(params or {})
        self.seed = seed
        self.features: list[str] = []
        self.classes: list[str] = []
        self.device_type: str | None = None
        self._booster: lgb.Booster | None = None

    def fit(self, readings: Sequence[DeviceReading], classes: Sequence[str]) -> TelemetryClassifier:
        if len(readings) != len(classes):
            raise ValueError(f"{len(readings)} readings but {len(classes)} labels")
        if not readings:
            raise ValueError("no readings to train on")
        self.features = sorted({k for r in readings for k in r.metrics})
        found = sorted(set(classes) - {BENIGN})
        if BENIGN not in classes or not found:
            raise ValueError("training needs both benign and attack rows")
        self.classes = [BENIGN, *found]
        types = {r.device_type for r in readings if r.device_type}
        self.device_type = types.pop() if len(types) == 1 else None
        y = np.array([self.classes.index(c) for c in classes])
        params: dict[str, Any] = {
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_data_in_leaf": 5,
            "verbosity": -1,
            "num_threads": 1,
            "seed": self.seed,
            "deterministic": True,
        }
        if len(self.classes) > 2:
            params.update(objective="multiclass", num_class=len(self.classes))
        else:
            params.update(objective="binary")
        params.update(self.params)
        weight = None
        if self.balance:  # benign and attack rows weigh the same in total, whatever the capture's mix
            attack = y > 0
            weight = np.where(attack, 0.5 / attack.mean(), 0.5 / (1.0 - attack.mean()))
        data = lgb.Dataset(
            feature_matrix(readings, self.features), label=y, weight=weight, feature_name=self._lgb_names()
        )
        self._booster = lgb.train(params, data, num_boost_round=self.num_boost_round)
        return self

    def _lgb_names(self) -> list[str]:
        return [f"f{i}" for i in range(len(self.features))]

    def predict(self, readings: Sequence[DeviceReading]) -> Predictions:
        if self._booster is None:
            raise RuntimeError("the classifier is not trained")
        if not readings:
            return Predictions(np.zeros(0), np.zeros(0, dtype=np.int64), [])
        raw = np.asarray(self._booster.predict(feature_matrix(readings, self.features)), dtype=np.float64)
        probs = np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw  # binary gives P(attack) only
        score = 1.0 - probs[:, 0]
        is_attack = (score >= self.threshold).astype(np.int64)
        best_attack = probs[:, 1:].argmax(axis=1) + 1
        predicted = [
            self.classes[int(c)] if a else BENIGN for a, c in zip(is_attack, best_attack, strict=True)
        ]
        return Predictions(score, is_attack, predicted)

    # ----------------------------------------------------------------- safe persistence (no pickle)
    def model_text(self) -> str:
        if self._booster is None:
            raise RuntimeError("the classifier is not trained")
        return str(self._booster.model_to_string())

    def meta_json(self) -> str:
        return json.dumps(
            {
                "format": "healthsec.telemetry-classifier",
                "version": FORMAT_VERSION,
                "features": self.features,
                "classes": self.classes,
                "threshold": self.threshold,
                "device_type": self.device_type,
                "features_exclude": "date/time: never used",
            },
            indent=2,
        )

    @classmethod
    def from_parts(cls, meta_json: str, model_text: str) -> TelemetryClassifier:
        meta = json.loads(meta_json)
        if meta.get("format") != "healthsec.telemetry-classifier" or meta.get("version") != FORMAT_VERSION:
            raise ValueError("not a healthsec telemetry model (meta.json format/version mismatch)")
        self = cls(threshold=float(meta["threshold"]))
        self.features = [str(f) for f in meta["features"]]
        self.classes = [str(c) for c in meta["classes"]]
        self.device_type = meta.get("device_type")
        self._booster = lgb.Booster(model_str=model_text)
        if self._booster.num_feature() != len(self.features):
            raise ValueError("model.txt and meta.json disagree on the number of features")
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
