"""Passive medical-device identification from a capture's flows, with unknown-device rejection."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import polars as pl
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

from healthsec.detect.ml.features import F64
from healthsec.detect.ml.unsupervised import safe_loads
from healthsec.model.capture import Capture as Capture  # re-exported for older imports

# Per-flow numbers nfstream gives for every flow (packet sizes, timing, flags, volumes).
FLOW_STATS = (
    "bidirectional_packets",
    "bidirectional_bytes",
    "bidirectional_duration_ms",
    "src2dst_packets",
    "src2dst_bytes",
    "dst2src_packets",
    "dst2src_bytes",
    "bidirectional_mean_ps",
    "bidirectional_max_ps",
    "bidirectional_stddev_ps",
    "src2dst_mean_ps",
    "dst2src_mean_ps",
    "bidirectional_mean_piat_ms",
    "bidirectional_max_piat_ms",
    "bidirectional_syn_packets",
    "bidirectional_psh_packets",
    "bidirectional_rst_packets",
    "bidirectional_fin_packets",
    "protocol",
    "dst_port",
)
UNKNOWN = "unknown"


def domain_of(name: str | None) -> str | None:
    """Registered-domain-like suffix: 'us-kardia-production.alivecor.com' -> 'alivecor.com'."""
    if not name:
        return None
    parts = name.strip(".").lower().split(".")
    if len(parts) >= 3 and len(parts[-1]) == 2 and parts[-2] in ("co", "com", "net", "org", "ac", "gov"):
        return ".".join(parts[-3:])
    return ".".join(parts[-2:])


def _tokens(cap: Capture, i: int) -> list[str]:
    """What a flow talks to: the server's domain, nDPI's application, and protocol/port."""
    out = []
    dom = domain_of(cap.server_names[i])
    if dom:
        out.append(f"dom:{dom}")
    app = cap.applications[i]
    if app:
        out.append(f"app:{app}")
    if "dst_port" in cap.frame.columns and "protocol" in cap.frame.columns:
        port, proto = cap.frame["dst_port"][i], cap.frame["protocol"][i]
        if port is not None and proto is not None:
            out.append(f"port:{int(proto)}/{int(port)}")
    return out


@dataclass
class DeviceIdentifier:
    """A random forest per capture and extra-trees per flow over packet statistics and destinations.

    A capture is called ``unknown`` when the forest's confidence is under ``min_confidence``, when
    fewer than ``min_overlap`` of its device-specific flows go to destinations (domain, application,
    protocol/port) seen for the predicted device, or when it holds only generic traffic.
    """

    vocab: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    device_tokens: dict[str, list[str]] = field(default_factory=dict)
    min_confidence: float = 0.3  # chosen on the UNR trial split (see docs/flows.md)
    min_overlap: float = 0.5
    capture_model: RandomForestClassifier | None = None
    flow_model: ExtraTreesClassifier | None = None
    seed: int = 0

    # --- features ---------------------------------------------------------------------------
    def _stats(self, frame: pl.DataFrame) -> F64:
        cols = [
            pl.col(c).cast(pl.Float64) if c in frame.columns else pl.lit(None, pl.Float64).alias(c)
            for c in FLOW_STATS
        ]
        x = frame.select(cols).to_numpy().astype(np.float64)
        out: F64 = np.nan_to_num(np.sign(x) * np.log1p(np.abs(x)), nan=-1.0)  # -1 marks missing (log1p >= 0)
        return out

    def flow_matrix(self, cap: Capture) -> F64:
        stats = self._stats(cap.frame)
        onehot = np.zeros((cap.frame.height, len(self.vocab)))
        index = {t: j for j, t in enumerate(self.vocab)}
        for i in range(cap.frame.height):
            for t in _tokens(cap, i):
                j = index.get(t)
                if j is not None:
                    onehot[i, j] = 1.0
        return np.hstack([stats, onehot])

    def capture_vector(self, cap: Capture) -> F64:
        fm = self.flow_matrix(cap)
        n = len(FLOW_STATS)
        if fm.shape[0] == 0:
            return np.zeros(3 * n + len(self.vocab) + 1)
        stats = fm[:, :n]
        return np.concatenate(
            [
                stats.mean(axis=0),
                stats.max(axis=0),
                stats.std(axis=0),
                fm[:, n:].mean(axis=0),
                [np.log1p(fm.shape[0])],
            ]
        )

    # --- training / prediction ----------------------------------------------------------------
    def fit(self, captures: Sequence[Capture], devices: Sequence[str]) -> DeviceIdentifier:
        counts: Counter[str] = Counter()
        doms: dict[str, set[str]] = {}
        for cap, dev in zip(captures, devices, strict=True):
            for i in range(cap.frame.height):
                for t in _tokens(cap, i):
                    counts[t] += 1
                    doms.setdefault(dev, set()).add(t)
        self.vocab = sorted(t for t, c in counts.items() if c >= 2)
        self.device_tokens = {d: sorted(v) for d, v in doms.items()}
        self.classes = sorted(set(devices))
        xc = np.vstack([self.capture_vector(c) for c in captures])
        self.capture_model = RandomForestClassifier(n_estimators=300, random_state=self.seed, n_jobs=1).fit(
            xc, devices
        )
        flow_x = [self.flow_matrix(c) for c in captures]
        flow_y = [dev for c, dev in zip(captures, devices, strict=True) for _ in range(c.frame.height)]
        if flow_y:
            # Extra-trees: 0.964 per-flow accuracy on the UNR trial split against 0.944-0.947 for
            # random forests of 100-300 trees (compared on that split, docs/flows.md).
            self.flow_model = ExtraTreesClassifier(n_estimators=300, random_state=self.seed, n_jobs=1).fit(
                np.vstack(flow_x), flow_y
            )
        return self

    def generic(self) -> set[str]:
        """Tokens seen for at least half the known devices (DNS, DoT, HTTPS to big clouds)."""
        counts: Counter[str] = Counter(t for toks in self.device_tokens.values() for t in toks)
        return {t for t, c in counts.items() if c >= max(2, len(self.device_tokens) / 2)}

    def overlap(self, cap: Capture, device: str) -> float | None:
        """Share of the capture's non-generic flows whose destinations were all seen for ``device``.

        None when every flow is generic: such a capture says nothing about which device sent it.
        """
        known = set(self.device_tokens.get(device, []))
        generic = self.generic()
        specific = [set(_tokens(cap, i)) for i in range(cap.frame.height)]
        specific = [toks for toks in specific if not toks <= generic]
        if not specific:
            return None
        return sum(toks <= known for toks in specific) / len(specific)

    def identify(self, cap: Capture) -> tuple[str, float, str]:
        """(device or 'unknown', confidence, reason) for one capture."""
        assert self.capture_model is not None, "fit or load the model first"
        if cap.frame.height == 0:
            return UNKNOWN, 0.0, "no flows"
        proba = self.capture_model.predict_proba(self.capture_vector(cap)[None, :])[0]
        j = int(np.argmax(proba))
        device, conf = str(self.capture_model.classes_[j]), float(proba[j])
        ov = self.overlap(cap, device)
        if ov is None:
            return UNKNOWN, conf, f"only generic traffic (DNS, DoT, cloud HTTPS); best guess {device}"
        if conf < self.min_confidence:
            return UNKNOWN, conf, f"best match {device} at confidence {conf:.2f} < {self.min_confidence}"
        if ov is not None and ov < self.min_overlap:
            return UNKNOWN, conf, f"best match {device}, but only {ov:.0%} of its specific flows fit it"
        why = f"confidence {conf:.2f}, {ov:.0%} of its specific flows fit it"
        return device, conf, why

    def identify_flows(self, cap: Capture) -> list[str]:
        """Device per flow, from the flow alone (no capture context)."""
        assert self.flow_model is not None, "fit or load the model first"
        if cap.frame.height == 0:
            return []
        return [str(v) for v in self.flow_model.predict(self.flow_matrix(cap))]

    # --- safe files ---------------------------------------------------------------------------
    def to_artifacts(self, card: Mapping[str, Any] | None = None) -> dict[str, bytes]:
        import skops.io as sio

        meta = {
            "vocab": self.vocab,
            "classes": self.classes,
            "device_tokens": self.device_tokens,
            "min_confidence": self.min_confidence,
            "min_overlap": self.min_overlap,
            "flow_stats": list(FLOW_STATS),
        }
        files = {
            "devices.json": orjson.dumps(meta, option=orjson.OPT_INDENT_2),
            "capture_rf.skops": sio.dumps(self.capture_model),
        }
        if self.flow_model is not None:
            files["flow_rf.skops"] = sio.dumps(self.flow_model)
        files["model_card.json"] = orjson.dumps(dict(card or {}), option=orjson.OPT_INDENT_2)
        return files

    @classmethod
    def from_artifacts(cls, files: Mapping[str, bytes]) -> DeviceIdentifier:
        meta = orjson.loads(files["devices.json"])
        flow = files.get("flow_rf.skops")
        return cls(
            vocab=list(meta["vocab"]),
            classes=list(meta["classes"]),
            device_tokens={k: list(v) for k, v in meta["device_tokens"].items()},
            min_confidence=float(meta["min_confidence"]),
            min_overlap=float(meta["min_overlap"]),
            capture_model=safe_loads(files["capture_rf.skops"], "capture_rf.skops"),
            flow_model=None if flow is None else safe_loads(flow, "flow_rf.skops"),
        )
