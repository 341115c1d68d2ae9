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
    """Adapts to a site's baseline one flow at a time; ``learn_one`` skips flows it would flag.

    Numbers are mapped to [0, 1] (Half-Space Trees' input range) by signed log1p and the min/max of
    the warm-up window (the first ``window_size`` flows); features constant during warm-up are left
    out, as they give the trees nothing to split on. Scoring never changes state.
    """

    n_trees: int = 10
    height: int = 8
    window_size: int = 250
    gate: float = 0.8  # flows scoring at or above this are not learned (poisoning guard)
    seed: int = 0
    features: list[str] | None = None
    lo: dict[str, float] = field(default_factory=dict)
    hi: dict[str, float] = field(default_factory=dict)
    seen: int = 0
    skipped: int = 0
    _model: HalfSpaceTrees | None = None
    _plan: list[tuple[str, float, float]] | None = None

    def _hst(self) -> HalfSpaceTrees:
        if self._model is None:
            self._model = HalfSpaceTrees(
                n_trees=self.n_trees, height=self.height, window_size=self.window_size, seed=self.seed
            )
        return self._model

    def _warm(self, event: Event) -> dict[str, float]:
        """Warm-up: widen the ranges, scale against them."""
        out: dict[str, float] = {}
        for k, v in flow_numbers(event, self.features).items():
            x = math.copysign(math.log1p(abs(v)), v)
            lo = self.lo[k] = min(self.lo.get(k, x), x)
            hi = self.hi[k] = max(self.hi.get(k, x), x)
            out[k] = (x - lo) / (hi - lo) if hi > lo else 0.5
        return out

    def _vector(self, event: Event) -> dict[str, float]:
        if self._plan is None:
            if self.seen < self.window_size:
                return self._warm(event)
            self._plan = [(k, lo, 1.0 / (self.hi[k] - lo)) for k, lo in self.lo.items() if self.hi[k] > lo]
        feats: Mapping[str, object] = event.features if isinstance(event, Flow) and event.features else {}
        if not feats:
            feats = flow_numbers(event)
        out: dict[str, float] = {}
        log1p = math.log1p
        for k, lo, inv in self._plan:
            v = feats.get(k)
            if v is None or not isinstance(v, int | float):
                continue
            y = ((log1p(v) if v >= 0 else -log1p(-v)) - lo) * inv
            out[k] = 0.0 if y < 0.0 else (1.0 if y > 1.0 else y)
        return out

    def score_one(self, event: Event) -> float:
        """Anomaly score in [0, 1]; 0 until the first window has been learned."""
        if self.seen < self.window_size:
            return 0.0
        return float(self._hst().score_one(self._vector(event)))  # type: ignore[no-untyped-call]

    def learn_one(self, event: Event) -> None:
        """Learn the flow unless, past the warm-up, it scores at or above the gate."""
        self.process_one(event)

    def process_one(self, event: Event) -> float:
        """Score, then learn if the score is under the gate: the streaming loop in one call."""
        hst = self._hst()
        x = self._vector(event)
        if self.seen < self.window_size:
            hst.learn_one(x)  # type: ignore[no-untyped-call]
            self.seen += 1
            return 0.0
        score = float(hst.score_one(x))  # type: ignore[no-untyped-call]
        if score < self.gate:
            hst.learn_one(x)  # type: ignore[no-untyped-call]
            self.seen += 1
        else:
            self.skipped += 1
        return score
