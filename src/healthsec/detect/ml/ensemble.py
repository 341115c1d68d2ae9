"""The flow ensemble: LightGBM (if labelled) + Isolation Forest + autoencoder, saying which part fired."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import polars as pl

from healthsec.detect.ml.explain import contribution_sentence, deviation_sentence
from healthsec.detect.ml.features import F64, FeatureSchema, flow_entities, frame_from_flows
from healthsec.detect.ml.streaming import StreamingFlowDetector
from healthsec.detect.ml.supervised import SupervisedFlowModel
from healthsec.detect.ml.unsupervised import IsolationForestPart, UnsupervisedFlowModel
from healthsec.model import Alert, Event, Flow, Severity, stable_id

VERSION = "1.0"
# Attack category -> ATT&CK technique it supports (coarse: categories are data-set families).
TECHNIQUES: dict[str, tuple[str, ...]] = {
    "dos": ("T1498",),
    "ddos": ("T1498",),
    "probe": ("T1046",),
    "reconnaissance": ("T1046",),
    "scanning": ("T1046",),
    "portscan": ("T1046",),
    "r2l": ("T1110",),
    "password": ("T1110",),
    "brute force": ("T1110",),
    "u2r": ("T1068",),
    "exploits": ("T1190",),
    "fuzzers": ("T1190",),
    "injection": ("T1190",),
    "xss": ("T1189",),
    "backdoor": ("T1071",),
    "bot": ("T1071",),
    "shellcode": ("T1203",),
    "worms": ("T1210",),
    "ransomware": ("T1486",),
}


@dataclass
class Prediction:
    """Per-row results, in input order."""

    score: F64  # in [0, 1); 0.5 or more = some part fired (higher = more likely an attack)
    is_attack: npt.NDArray[np.int8]
    predicted: list[str]
    fired: list[str]  # e.g. "supervised+autoencoder", "" when nothing fired
    evidence: dict[str, F64]  # per part, same scale as score
    probability: F64 | None = None  # calibrated supervised attack probability, when labelled training


@dataclass
class FlowEnsemble:
    """What ``healthsec train flows`` builds and ``detect flows`` runs."""

    schema: FeatureSchema
    unsupervised: UnsupervisedFlowModel
    supervised: SupervisedFlowModel | None = None
    card: dict[str, Any] = field(default_factory=dict)
    warmup: list[dict[str, float]] = field(default_factory=list)  # benign rows that start the stream part
    name: str = "flow-ensemble"
    version: str = VERSION

    @classmethod
    def train(
        cls,
        frame: pl.DataFrame,
        categorical: Sequence[str],
        labels: Sequence[str] | None = None,
        fpr: float = 0.05,
        seed: int = 0,
        val_mask: npt.NDArray[np.bool_] | None = None,
    ) -> FlowEnsemble:
        """Fit on ``frame``. Without labels every row is taken as the site's benign baseline.

        ``val_mask`` marks the validation rows (calibration and thresholds); by default a seeded 20 %
        stratified sample. Pass a mask by file/capture when several files are given.
        """
        n = frame.height
        labs = list(labels) if labels is not None else ["benign"] * n
        y = np.array([lab != "benign" for lab in labs], dtype=bool)
        if val_mask is None:
            val_mask = _stratified_mask(y, 0.2, seed)
        benign_fit = frame.filter(pl.Series(~y & ~val_mask))
        benign_val = frame.filter(pl.Series(~y & val_mask))
        if benign_fit.height < 10 or benign_val.height < 10:
            raise ValueError(
                f"too few benign flows to learn a baseline ({benign_fit.height} + {benign_val.height})"
            )
        schema = FeatureSchema.fit(frame, categorical, baseline=benign_fit)
        unsup = UnsupervisedFlowModel.fit(schema.scaled(benign_fit), schema.scaled(benign_val), fpr, seed)
        sup = None
        if labels is not None and y.any():
            fit_idx = np.flatnonzero(~val_mask)
            val_idx = np.flatnonzero(val_mask)
            sup = SupervisedFlowModel.fit(
                schema,
                frame[fit_idx],
                [labs[i] for i in fit_idx],
                frame[val_idx],
                [labs[i] for i in val_idx],
                seed,
            )
        model = cls(schema=schema, unsupervised=unsup, supervised=sup)
        model.warmup = _warmup_rows(benign_fit, schema.numeric, seed)
        model._tune(benign_val, fpr)
        if y[val_mask].any():
            model.card["validation_metrics"] = model.evaluate(frame.filter(pl.Series(val_mask)), y[val_mask])
        return model

    def compile(self, cache_dir: Path | None = None) -> bool:
        """Native code for the LightGBM models and the Isolation Forest (optional lleaves; see
        ``detect.ml.native``): the same predictions, faster. False when lleaves is missing."""
        trees = self.unsupervised.compile(cache_dir)
        return self.supervised.compile(cache_dir) and trees if self.supervised is not None else trees

    def drop_native(self) -> None:
        """Back to LightGBM's and sklearn's own predict (what runs without the native extra)."""
        if self.supervised is not None:
            self.supervised.native = {}
        for part in self.unsupervised.parts.values():
            if isinstance(part, IsolationForestPart):
                part.native = None

    def evaluate(self, frame: pl.DataFrame, y: npt.NDArray[np.bool_]) -> dict[str, float]:
        """Accuracy, balanced accuracy, attack recall, FPR and ROC-AUC of the ensemble on labelled rows."""
        from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

        pred = self.predict(frame)
        yi = y.astype(np.int8)
        out = {
            "rows": float(len(yi)),
            "accuracy": float(accuracy_score(yi, pred.is_attack)),
            "balanced_accuracy": float(balanced_accuracy_score(yi, pred.is_attack)),
            "attack_recall": float(pred.is_attack[yi == 1].mean()) if (yi == 1).any() else float("nan"),
            "false_positive_rate": float(pred.is_attack[yi == 0].mean()) if (yi == 0).any() else float("nan"),
        }
        if 0 < yi.sum() < len(yi):
            out["roc_auc"] = float(roc_auc_score(yi, pred.score))
        return {k: round(v, 4) for k, v in out.items()}

    def _tune(self, benign_val: pl.DataFrame, fpr: float) -> None:
        """Pick the parts' common benign quantile so the whole ensemble's FPR on benign validation <= fpr."""
        x = self.schema.scaled(benign_val)
        scores = {name: part.score(x) for name, part in self.unsupervised.parts.items()}
        sup_fire = np.zeros(x.shape[0], dtype=bool)
        if self.supervised is not None:
            sup_fire = (
                self.supervised.probability(self.schema.tree_matrix(benign_val)) >= self.supervised.threshold
            )
        lo, hi = 1.0 - fpr, 0.9999
        for _ in range(30):
            q = (lo + hi) / 2
            fires = sup_fire.copy()
            for s in scores.values():
                fires |= s >= np.quantile(s, q)
            if fires.mean() > fpr:
                lo = q
            else:
                hi = q
        for name, s in scores.items():
            self.unsupervised.thresholds[name] = float(np.quantile(s, hi))
        self.unsupervised.fpr = fpr
        fires = sup_fire.copy()
        for name, s in scores.items():
            fires |= s >= self.unsupervised.thresholds[name]
        self.card["validation_benign_fpr"] = round(float(fires.mean()), 4)
        self.card["unsupervised_quantile"] = round(hi, 5)

    def stream_scores(self, frame: pl.DataFrame) -> tuple[F64, float]:
        """The streaming part over ``frame`` in row order: gated Half-Space Trees started on the stored
        benign warm-up rows, then scoring and (gated) learning each row. Returns scores and the gate."""
        det = StreamingFlowDetector(window_size=max(10, min(250, len(self.warmup) // 2)), seed=0)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        for i, row in enumerate(self.warmup):
            det.process_one(
                Flow(id=f"w{i}", ts=epoch, source="warmup", src_ip=None, dst_ip=None, features=row)
            )
        rows = frame.select(self.schema.numeric).to_dicts()
        scores = np.array(
            [
                det.process_one(
                    Flow(id=f"s{i}", ts=epoch, source="stream", src_ip=None, dst_ip=None, features=row)
                )
                for i, row in enumerate(rows)
            ],
            dtype=np.float64,
        )
        return scores, float(det.gate or 1.0)

    def predict(self, frame: pl.DataFrame, online: bool = False) -> Prediction:
        """Score every row. Raises SchemaError naming missing columns when ``frame`` does not fit.

        ``online`` adds the streaming part (rows are taken as a stream in their order).
        """
        self.schema.check(frame)
        margins = self.unsupervised.margins(self.schema.scaled(frame))
        evidence = {name: m / (1.0 + m) for name, m in margins.items()}
        prob = None
        categories: npt.NDArray[np.object_] | None = None
        if self.supervised is not None:
            xt = self.schema.tree_matrix(frame)
            prob = self.supervised.probability(xt)
            # Map the calibrated probability so that its threshold lands on 0.5 like the other parts.
            t = self.supervised.threshold
            evidence = {"supervised": np.where(prob < t, prob / t * 0.5, 0.5 + (prob - t) / (1 - t) * 0.4999)}
            evidence.update({name: m / (1.0 + m) for name, m in margins.items()})
            sup_rows = np.flatnonzero(evidence["supervised"] >= 0.5)
            cats = np.full(frame.height, "benign", dtype=object)
            cats[sup_rows] = self.supervised.categories(xt[sup_rows])
            categories = cats
        if online and self.warmup:
            stream, gate = self.stream_scores(frame)
            m = stream / gate if gate > 0 else stream
            evidence["stream"] = m / (1.0 + m)
        stacked = np.vstack(list(evidence.values()))
        score = stacked.max(axis=0)
        fired_mask = stacked >= 0.5
        names = list(evidence)
        # Which parts fired, as a bit mask per row turned into names through a small lookup table
        # (a per-row numpy call cost a third of scoring time).
        codes = (fired_mask.astype(np.int64) << np.arange(len(names))[:, None]).sum(axis=0)
        table = ["+".join(n for j, n in enumerate(names) if c >> j & 1) for c in range(1 << len(names))]
        fired = np.asarray(table, dtype=object)[codes].tolist()
        is_attack: npt.NDArray[np.int8] = np.asarray(codes > 0, dtype=np.int8)
        # benign where nothing fired; the supervised category where it fired; else "anomaly"
        labels = np.where(codes == 0, "benign", "anomaly").astype(object)
        if categories is not None:
            sup = (codes & 1).astype(bool)
            labels[sup] = categories[sup]
        predicted = labels.tolist()
        return Prediction(
            score=score,
            is_attack=is_attack,
            predicted=predicted,
            fired=fired,
            evidence=evidence,
            probability=prob,
        )

    def explain(self, frame: pl.DataFrame, pred: Prediction, rows: Sequence[int]) -> list[str]:
        """One explanation per requested row, naming the top features, values and direction."""
        if not rows:
            return []
        sub = frame[list(rows)]
        values = sub.to_dicts()
        dense = self.schema.scaled(sub)
        devs = {name: part.feature_deviation(dense) for name, part in self.unsupervised.parts.items()}
        margins = self.unsupervised.margins(dense)
        contrib = None
        xt = None
        if self.supervised is not None:
            xt = self.schema.tree_matrix(sub)
            contrib = self.supervised.contributions(xt)
        out = []
        for k, i in enumerate(rows):
            parts = pred.fired[i].split("+") if pred.fired[i] else []
            sentences = []
            if (
                contrib is not None
                and xt is not None
                and pred.probability is not None
                and "supervised" in parts
            ):
                vals = [values[k].get(c) for c in self.schema.tree_names]
                sentences.append(
                    contribution_sentence(
                        float(pred.probability[i]), contrib[k], self.schema.tree_names, vals
                    )
                )
            for name in self.unsupervised.parts:
                if name in parts:
                    sentences.append(
                        deviation_sentence(
                            name, float(margins[name][k]), devs[name][k], dense[k], self.schema, values[k]
                        )
                    )
            if "stream" in parts and "stream" in pred.evidence:
                e = float(pred.evidence["stream"][i])
                margin = e / (1.0 - e) if e < 1.0 else float("inf")
                # The trees give no per-feature split; name the features farthest from the benign scaler.
                sentences.append(
                    deviation_sentence("stream", margin, np.abs(dense[k]), dense[k], self.schema, values[k])
                )
            if not sentences:
                sentences.append(f"No part fired (score {pred.score[i]:.2f}).")
            out.append(" ".join(sentences))
        return out

    def alerts(
        self, flows: Sequence[Flow], frame: pl.DataFrame, pred: Prediction, rows: Sequence[int]
    ) -> list[Alert]:
        """Alerts for ``rows`` (flagged rows of ``frame``); ``flows[k]`` is the Flow of ``rows[k]``."""
        texts = self.explain(frame, pred, rows)
        alerts = []
        for flow, i, text in zip(flows, rows, texts, strict=True):
            score = float(pred.score[i])
            category = pred.predicted[i]
            feats: dict[str, float | str | None] = {
                f"evidence_{k}": round(float(v[i]), 4) for k, v in pred.evidence.items()
            }
            feats["fired"] = pred.fired[i]
            alerts.append(
                Alert(
                    id=stable_id("alert", self.name, flow.id),
                    ts=flow.ts,
                    detector=self.name,
                    detector_version=self.version,
                    title=f"Network flow flagged as {category} ({pred.fired[i]})",
                    score=score,
                    severity=_severity(score, pred.fired[i]),
                    explanation=text,
                    evidence=(flow.id,),
                    entities=flow_entities(flow),
                    techniques=TECHNIQUES.get(category, ()),
                    tactics=(),
                    features=feats,
                )
            )
        return alerts

    # --- AlertingDetector protocol over typed events -------------------------------------------
    def fit(self, events: Iterable[Event]) -> None:
        """Re-learn the unsupervised baseline from benign Flow events (supervised part unchanged)."""
        flows = [e for e in events if isinstance(e, Flow)]
        frame = frame_from_flows(flows, self.schema.columns, list(self.schema.categorical))
        model = FlowEnsemble.train(frame, list(self.schema.categorical), None, self.unsupervised.fpr)
        self.schema, self.unsupervised = model.schema, model.unsupervised
        if self.supervised is not None:
            self.supervised.schema = model.schema

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        flows = [e for e in events if isinstance(e, Flow)]
        if not flows:
            return []
        frame = frame_from_flows(flows, self.schema.columns, list(self.schema.categorical))
        pred = self.predict(frame)
        rows = [int(i) for i in np.flatnonzero(pred.is_attack)]
        return self.alerts([flows[i] for i in rows], frame, pred, rows)

    # --- safe model files -------------------------------------------------------------------
    def to_artifacts(self) -> dict[str, bytes]:
        """File name -> content: JSON, LightGBM text and skops only (no pickle)."""
        files: dict[str, bytes] = {
            "schema.json": orjson.dumps(self.schema.to_dict(), option=orjson.OPT_INDENT_2)
        }
        meta: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "unsupervised": self.unsupervised.meta(),
        }
        if self.supervised is not None:
            meta["supervised"] = self.supervised.meta()
            files.update({k: v.encode() for k, v in self.supervised.to_artifacts().items()})
        files.update(self.unsupervised.to_artifacts())
        files["ensemble.json"] = orjson.dumps(meta, option=orjson.OPT_INDENT_2)
        if self.warmup:
            files["stream_warmup.json"] = orjson.dumps(self.warmup)
        files["model_card.json"] = orjson.dumps(
            self.card, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
        )
        return files

    @classmethod
    def from_artifacts(cls, files: Mapping[str, bytes]) -> FlowEnsemble:
        schema = FeatureSchema.from_dict(orjson.loads(files["schema.json"]))
        meta = orjson.loads(files["ensemble.json"])
        unsup = UnsupervisedFlowModel.from_artifacts(meta["unsupervised"], files)
        sup = None
        if "supervised" in meta:
            texts = {k: v.decode() for k, v in files.items() if k.endswith(".lgb.txt")}
            sup = SupervisedFlowModel.from_artifacts(schema, meta["supervised"], texts)
        card = orjson.loads(files["model_card.json"]) if "model_card.json" in files else {}
        warmup = orjson.loads(files["stream_warmup.json"]) if "stream_warmup.json" in files else []
        return cls(
            schema=schema,
            unsupervised=unsup,
            supervised=sup,
            card=card,
            warmup=[{str(k): float(v) for k, v in row.items()} for row in warmup],
            version=meta.get("version", VERSION),
        )


def _severity(score: float, fired: str) -> Severity:
    n = len(fired.split("+")) if fired else 0
    if score >= 0.9 and n >= 2:
        return Severity.HIGH
    if score >= 0.75 or n >= 2:
        return Severity.MEDIUM
    return Severity.LOW


def _warmup_rows(
    frame: pl.DataFrame, numeric: Sequence[str], seed: int, n: int = 500
) -> list[dict[str, float]]:
    """A seeded sample of benign rows (numbers only, missing values left out) for the stream part."""
    take = np.random.default_rng(seed).permutation(frame.height)[:n]
    rows = frame[take.tolist()].select(list(numeric)).to_dicts()
    return [{k: float(v) for k, v in r.items() if v is not None} for r in rows]


def _stratified_mask(y: npt.NDArray[np.bool_], fraction: float, seed: int) -> npt.NDArray[np.bool_]:
    rng = np.random.default_rng(seed)
    mask = np.zeros(y.shape[0], dtype=bool)
    for cls_value in (False, True):
        idx = np.flatnonzero(y == cls_value)
        take = rng.choice(idx, round(fraction * idx.size), replace=False) if idx.size else idx
        mask[take] = True
    return mask
