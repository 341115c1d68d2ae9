"""Streaming flow detector: river's Half-Space Trees on log-scaled flow numbers, with gated learning."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from river.anomaly import HalfSpaceTrees

from healthsec.model import Event, Flow

TYPED_FIELDS = ("duration", "bytes_out", "bytes_in", "packets_out", "packets_in", "dst_port")


def flow_numbers(event: Event, names: Sequence[str] | None = None) -> dict[str, float]:
    """Numeric features of a flow: its ``features`` mapping, else its typed fields (missing ones left out)."""
    if not isinstance(event, Flow):
        return {}
    out: dict[str, float] = {}
    if event.features:
        items: Mapping[str, object] = event.features
        keys = names if names is not None else list(items)
        for k in keys:
            v = items.get(k)
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                out[k] = float(v)
        if out:
            return out
    for k in TYPED_FIELDS if names is None else names:
        v = getattr(event, k, None)
        if isinstance(v, int | float) and math.isfinite(v):
            out[k] = float(v)
    return out


@dataclass
class StreamingFlowDetector:
    """Adapts to a site's baseline one flow at a time; flows it would flag do not train it.

    Numbers go through signed log1p and are mapped so that the warm-up range (the first
    ``window_size`` flows) spans [0.25, 0.75] of Half-Space Trees' unit interval: values beyond what
    warm-up saw keep room to stand out. Unless ``gate`` is given, the learning gate is the
    ``gate_quantile`` of the warm-up flows' own scores. Scoring never changes state.
    """

    n_trees: int = 10
    height: int = 8
    window_size: int = 250
    gate: float | None = None  # flows scoring at or above this are not learned (poisoning guard)
    gate_quantile: float = 0.99
    seed: int = 0
    features: list[str] | None = None
    lo: dict[str, float] = field(default_factory=dict)
    hi: dict[str, float] = field(default_factory=dict)
    seen: int = 0
    skipped: int = 0
    _model: HalfSpaceTrees | None = None
    _plan: list[tuple[str, float, float]] | None = None
    _warm_rows: list[dict[str, float]] = field(default_factory=list)

    def _hst(self) -> HalfSpaceTrees:
        if self._model is None:
            self._model = HalfSpaceTrees(
                n_trees=self.n_trees, height=self.height, window_size=self.window_size, seed=self.seed
            )
        return self._model

    def _logs(self, event: Event) -> dict[str, float]:
        return {
            k: math.copysign(math.log1p(abs(v)), v) for k, v in flow_numbers(event, self.features).items()
        }

    def _vector(self, event: Event) -> dict[str, float]:
        assert self._plan is not None
        feats: Mapping[str, object] = event.features if isinstance(event, Flow) and event.features else {}
        if not feats:
            feats = flow_numbers(event)
        out: dict[str, float] = {}
        log1p = math.log1p
        for k, lo, inv in self._plan:
            v = feats.get(k)
            if v is None or not isinstance(v, int | float):
                continue
            y = 0.25 + ((log1p(v) if v >= 0 else -log1p(-v)) - lo) * inv
            out[k] = 0.0 if y < 0.0 else (1.0 if y > 1.0 else y)
        return out

    def _finish_warm_up(self) -> None:
        # Features constant in warm-up are left out (nothing for the trees to split; also speed);
        # spans under one log unit are widened so small jitter does not look extreme.
        self._plan = [
            (k, lo, 0.5 / max(self.hi[k] - lo, 1.0)) for k, lo in self.lo.items() if self.hi[k] > lo
        ]
        hst = self._hst()
        rows = []
        for raw in self._warm_rows:
            row = {}
            for k, lo, inv in self._plan:
                if k in raw:
                    row[k] = min(1.0, max(0.0, 0.25 + (raw[k] - lo) * inv))
            if row:
                rows.append(row)
                hst.learn_one(row)  # type: ignore[no-untyped-call]
        if self.gate is None:
            scores = sorted(float(hst.score_one(r)) for r in rows)  # type: ignore[no-untyped-call]
            self.gate = scores[min(len(scores) - 1, int(self.gate_quantile * len(scores)))] if scores else 1.0
        self._warm_rows = []

    def score_one(self, event: Event) -> float:
        """Anomaly score in [0, 1]; 0 during warm-up."""
        if self._plan is None:
            return 0.0
        x = self._vector(event)
        return float(self._hst().score_one(x)) if x else 0.0  # type: ignore[no-untyped-call]

    def learn_one(self, event: Event) -> None:
        """Learn the flow unless, past the warm-up, it scores at or above the gate."""
        self.process_one(event)

    def process_one(self, event: Event) -> float:
        """Score, then learn if the score is under the gate: the streaming loop in one call."""
        if self._plan is None:
            logs = self._logs(event)
            for k, lv in logs.items():
                self.lo[k] = min(self.lo.get(k, lv), lv)
                self.hi[k] = max(self.hi.get(k, lv), lv)
            self._warm_rows.append(logs)
            self.seen += 1
            if self.seen >= self.window_size:
                self._finish_warm_up()
            return 0.0
        hst = self._hst()
        x = self._vector(event)
        if not x:  # nothing the baseline knows how to measure
            self.skipped += 1
            return 0.0
        score = float(hst.score_one(x))  # type: ignore[no-untyped-call]
        if self.gate is None or score < self.gate:
            hst.learn_one(x)  # type: ignore[no-untyped-call]
            self.seen += 1
        else:
            self.skipped += 1
        return score
