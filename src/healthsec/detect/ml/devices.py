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
# A flow that only asks a resolver (DNS, DNS over TLS/HTTPS) looks the same from every device; it is
# judged only when a capture holds nothing else.
RESOLVER_TOKENS = frozenset(
    {"app:DNS", "app:DoH_DoT", "port:17/53", "port:6/53", "port:6/853", "port:17/853"}
)


def domain_of(name: str | None) -> str | None:
    """Registered-domain-like suffix: 'us-kardia-production.alivecor.com' -> 'alivecor.com'."""
    if not name:
        return None
    parts = name.strip(".").lower().split(".")
    if len(parts) >= 3 and len(parts[-1]) == 2 and parts[-2] in ("co", "com", "net", "org", "ac", "gov"):
        return ".".join(parts[-3:])
    return ".".join(parts[-2:])


def _cap_tokens(cap: Capture) -> list[list[str]]:
    """What each flow of ``cap`` talks to (see :func:`_tokens`), worked out once per capture."""
    cached: list[list[str]] | None = cap.__dict__.get("_flow_tokens")
    if cached is None:
        cached = [_tokens(cap, i) for i in range(cap.frame.height)]
        cap.__dict__["_flow_tokens"] = cached
    return cached


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
    min_confidence: float = 0.3  # defaults; ``fit`` chooses both by cross-validation on its training data
    min_overlap: float = 0.5
    tuning: dict[str, Any] = field(default_factory=dict)  # how the thresholds were chosen (CV figures)
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
        for i, toks in enumerate(_cap_tokens(cap)):
            for t in toks:
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
    def fit(
        self,
        captures: Sequence[Capture],
        devices: Sequence[str],
        groups: Sequence[object] | None = None,
        *,
        tune: bool = True,
        flows: bool = True,
    ) -> DeviceIdentifier:
        """Train on labelled captures. ``tune`` chooses the unknown-rule thresholds by cross-validation
        over these captures only (:func:`choose_thresholds`; ``groups`` = the capture trial of each, for
        leave-one-trial-out); ``flows`` also trains the per-flow model."""
        if tune and len(set(devices)) >= 3:
            self.min_confidence, self.min_overlap, self.tuning = choose_thresholds(
                captures, devices, groups, seed=self.seed
            )
        counts: Counter[str] = Counter()
        doms: dict[str, set[str]] = {}
        for cap, dev in zip(captures, devices, strict=True):
            for toks in _cap_tokens(cap):
                for t in toks:
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
        if flow_y and flows:
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
        """Share of the capture's non-generic flows whose destinations were all seen for ``device``
        (flows to resolvers left out when the capture holds others).

        None when every flow is generic: such a capture says nothing about which device sent it.
        """
        known = set(self.device_tokens.get(device, []))
        generic = self.generic()
        specific = [set(toks) for toks in _cap_tokens(cap)]
        specific = [toks for toks in specific if not toks <= generic]
        if not specific:
            return None
        beyond = [toks for toks in specific if not toks <= RESOLVER_TOKENS]
        specific = beyond or specific  # resolver flows count only when there is nothing else
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
            "tuning": self.tuning,
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
            tuning=dict(meta.get("tuning", {})),
            capture_model=safe_loads(files["capture_rf.skops"], "capture_rf.skops"),
            flow_model=None if flow is None else safe_loads(flow, "flow_rf.skops"),
        )


CONFIDENCE_GRID = tuple(round(0.05 * i, 2) for i in range(15))  # 0.0 .. 0.7
OVERLAP_GRID = tuple(round(0.1 * i, 1) for i in range(11))  # 0.0 .. 1.0


def _best_guess(ident: DeviceIdentifier, cap: Capture) -> tuple[str, float, float | None]:
    assert ident.capture_model is not None
    proba = ident.capture_model.predict_proba(ident.capture_vector(cap)[None, :])[0]
    j = int(np.argmax(proba))
    device = str(ident.capture_model.classes_[j])
    return device, float(proba[j]), ident.overlap(cap, device)


def cv_records(
    captures: Sequence[Capture], devices: Sequence[str], groups: Sequence[object] | None = None, seed: int = 0
) -> tuple[list[tuple[float, float | None, bool]], list[tuple[float, float | None]], str]:
    """Cross-validated (confidence, overlap, named right) of known captures and (confidence, overlap) of
    captures of a device left out of training; see :func:`choose_thresholds`."""
    n = len(captures)
    labels = list(devices)
    if groups is not None and len(set(groups)) >= 2:
        keys = list(groups)
        folds = [[i for i in range(n) if keys[i] == g] for g in sorted(set(keys), key=str)]
        scheme = f"leave-one-trial-out over {len(folds)} trials"
    else:
        order = np.random.default_rng(seed).permutation(n)
        folds = [sorted(int(i) for i in f) for f in np.array_split(order, min(5, n)) if len(f)]
        scheme = f"{len(folds)}-fold over captures (fewer than two trials given)"
    known: list[tuple[float, float | None, bool]] = []
    for held in folds:
        rest = [i for i in range(n) if i not in set(held)]
        if len({labels[i] for i in rest}) < 2:
            continue
        ident = DeviceIdentifier(seed=seed).fit(
            [captures[i] for i in rest], [labels[i] for i in rest], tune=False, flows=False
        )
        for i in held:
            if captures[i].frame.height:
                dev, conf, ov = _best_guess(ident, captures[i])
                known.append((conf, ov, dev == labels[i]))
    unseen: list[tuple[float, float | None]] = []
    for d in sorted(set(labels)):
        rest = [i for i in range(n) if labels[i] != d]
        if len({labels[i] for i in rest}) < 2:
            continue
        ident = DeviceIdentifier(seed=seed).fit(
            [captures[i] for i in rest], [labels[i] for i in rest], tune=False, flows=False
        )
        for i in range(n):
            if labels[i] == d and captures[i].frame.height:
                _, conf, ov = _best_guess(ident, captures[i])
                unseen.append((conf, ov))
    return known, unseen, scheme


def select_thresholds(
    known: Sequence[tuple[float, float | None, bool]], unseen: Sequence[tuple[float, float | None]]
) -> tuple[float, float, float, float]:
    """(min_confidence, min_overlap, known rate, unseen rate): the grid point with the highest sum of
    the two rates; among equal sums the stricter thresholds (what the training captures cannot tell
    apart is left to ``unknown`` rather than guessed)."""

    def accepted(conf: float, ov: float | None, mc: float, mo: float) -> bool:
        return ov is not None and conf >= mc and ov >= mo

    best = (-1.0, 0.3, 0.5, 0.0, 0.0)
    for mc in CONFIDENCE_GRID:
        for mo in OVERLAP_GRID:
            k = float(np.mean([ok and accepted(c, o, mc, mo) for c, o, ok in known])) if known else 0.0
            u = float(np.mean([not accepted(c, o, mc, mo) for c, o in unseen])) if unseen else 0.0
            tie = abs(k + u - best[0]) <= 1e-9
            if k + u > best[0] + 1e-9 or (tie and (mc + mo, mo) > (best[1] + best[2], best[2])):
                best = (k + u, mc, mo, k, u)
    return best[1], best[2], best[3], best[4]


def choose_thresholds(
    captures: Sequence[Capture], devices: Sequence[str], groups: Sequence[object] | None = None, seed: int = 0
) -> tuple[float, float, dict[str, Any]]:
    """(min_confidence, min_overlap, report) by cross-validation over the training captures only.

    Known devices: leave-one-trial-out when ``groups`` holds two or more trials, else 5 folds over the
    captures; each held-out capture counts when named right and not sent to ``unknown``. Unseen devices:
    leave-one-device-out; each of its captures counts when sent to ``unknown``. The pair of thresholds
    with the highest sum of the two rates wins (ties: the stricter pair)."""
    known, unseen, scheme = cv_records(captures, devices, groups, seed)
    mc, mo, k, u = select_thresholds(known, unseen)
    report = {
        "scheme": scheme + "; unseen devices: leave-one-device-out",
        "cv_known_accuracy": round(k, 4),
        "cv_unseen_to_unknown": round(u, 4),
        "known_captures": len(known),
        "unseen_captures": len(unseen),
    }
    return mc, mo, report
