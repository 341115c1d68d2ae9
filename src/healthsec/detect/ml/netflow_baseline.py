"""Unsupervised network-flow anomaly detection: Isolation Forest over per-flow and site-context features."""

from __future__ import annotations

import base64
import copy
import ipaddress
import math
import zipfile
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import IsolationForest

from healthsec.detect.base import KnownPairsBaseline
from healthsec.model import Alert, Asset, Entity, EntityKind, EntityRole, Event, Flow, Severity, stable_id

FEATURES = (
    "log_bytes_out",
    "log_bytes_in",
    "log_duration",
    "out_ratio",
    "zone_port_rarity",
    "peer_rarity",
    "fan_out_10m",
    "repeats_60m",
    "bytes_out_z",
)

_SCAN_FAN_OUT = 5  # distinct peers on one port within 10 min from which a flow counts as part of a sweep

_FEATURE_TEXT = {
    "log_bytes_out": "bytes sent",
    "log_bytes_in": "bytes received",
    "log_duration": "duration",
    "out_ratio": "share of bytes sent",
    "zone_port_rarity": "rarity of this zone-to-zone service",
    "peer_rarity": "rarity of this peer",
    "fan_out_10m": "distinct peers on this port in 10 min",
    "repeats_60m": "connections to this peer in 60 min",
    "bytes_out_z": "bytes sent against this service's baseline (z)",
}


# The site's own address space; everything else is the internet. (ipaddress.is_private would also
# count the documentation ranges as internal.)
INTERNAL_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10")
)


def _zone_of(ip: str | None, zones: Mapping[str, str]) -> str:
    if ip is None:
        return "unknown"
    if ip in zones:
        return zones[ip]
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    if addr.is_loopback or any(addr in net for net in INTERNAL_NETS if net.version == addr.version):
        return "internal-unknown"
    return "external"


@dataclass
class _Window:
    """Causal sliding-window state: who talked to whom recently."""

    fan: dict[tuple[str, int], deque[tuple[datetime, str, str]]] = field(
        default_factory=lambda: defaultdict(deque)
    )
    pairs: dict[tuple[str, str], deque[datetime]] = field(default_factory=lambda: defaultdict(deque))

    def observe(self, f: Flow) -> tuple[int, int]:
        src, dst, port = f.src_ip or "?", f.dst_ip or "?", f.dst_port or -1
        q = self.fan[(src, port)]
        while q and f.ts - q[0][0] > timedelta(minutes=10):
            q.popleft()
        q.append((f.ts, dst, f.id))
        p = self.pairs[(src, dst)]
        while p and f.ts - p[0] > timedelta(minutes=60):
            p.popleft()
        p.append(f.ts)
        return len({d for _, d, _ in q}), len(p)

    def fan_ids(self, f: Flow) -> list[str]:
        """Ids of the flows in ``f``'s fan-out window (the connections a scan is made of)."""
        return [i for _, _, i in self.fan[(f.src_ip or "?", f.dst_port or -1)]]


class FlowAnomalyDetector:
    """Isolation Forest trained on a site's benign flows; alerts summarise a source's anomalous flows.

    Context features (how rare this zone-to-zone service and this peer are at this site, fan-out and
    repetition in sliding windows) are what make lateral movement, scanning, beaconing and exfiltration
    stand out; the threshold is the ``1 - fpr`` quantile of benign training scores.
    """

    name = "flow-iforest"
    version = "1.0"

    def __init__(
        self,
        assets: Iterable[Asset] = (),
        *,
        fpr: float = 0.002,
        min_flows: int = 2,
        window_minutes: int = 30,
        seed: int = 0,
    ) -> None:
        self.zones = {a.ip: a.zone for a in assets if a.ip}
        self.hosts = {a.ip: a.name for a in assets if a.ip}
        self.fpr = fpr
        self.min_flows = min_flows
        self.window = timedelta(minutes=window_minutes)
        self.seed = seed
        self._model: IsolationForest | None = None
        self._threshold = math.inf
        self._service: Counter[tuple[str, str, int, str]] = Counter()
        self._peer: Counter[str] = Counter()
        self._n = 0
        self._bytes_stats: dict[tuple[str, str, int], tuple[float, float]] = {}
        self._median = np.zeros(len(FEATURES))
        self._scale = np.ones(len(FEATURES))
        self._state = _Window()
        self._fan_context: dict[str, list[str]] = {}

    # --- features ---------------------------------------------------------------------------------
    def _service_key(self, f: Flow) -> tuple[str, str, int, str]:
        return (
            _zone_of(f.src_ip, self.zones),
            _zone_of(f.dst_ip, self.zones),
            f.dst_port or -1,
            f.protocol or "",
        )

    def _peer_key(self, f: Flow) -> str:
        return f"{f.src_ip}>{f.dst_ip}" if _zone_of(f.dst_ip, self.zones) != "external" else f"ext>{f.dst_ip}"

    def _features(
        self, flows: Sequence[Flow], state: _Window, *, leave_one_out: bool
    ) -> npt.NDArray[np.float64]:
        out = np.zeros((len(flows), len(FEATURES)))
        loo = 1 if leave_one_out else 0
        n = max(self._n, 1)
        for i, f in enumerate(flows):
            fan, rep = state.observe(f)
            if fan >= _SCAN_FAN_OUT and state is self._state:  # only detect() keeps sweep context
                self._fan_context[f.id] = state.fan_ids(f)
            bo = float(f.bytes_out or 0)
            bi = float(f.bytes_in or 0)
            key = self._service_key(f)
            svc = max(self._service[key] - loo, 0)
            peer = max(self._peer[self._peer_key(f)] - loo, 0)
            mu, sd = self._bytes_stats.get(key[:3], (math.log1p(bo), 1.0))
            out[i] = (
                math.log1p(bo),
                math.log1p(bi),
                math.log1p(f.duration or 0.0),
                bo / (bo + bi) if bo + bi > 0 else 0.5,
                -math.log((svc + 1) / (n + 1)),
                -math.log((peer + 1) / (n + 1)),
                math.log1p(fan),
                math.log1p(rep),
                (math.log1p(bo) - mu) / sd,
            )
        return out

    # --- AlertingDetector ---------------------------------------------------------------------------
    def fit(self, events: Iterable[Event]) -> None:
        flows = [e for e in events if isinstance(e, Flow)]
        if len(flows) < 50:
            raise ValueError(f"need at least 50 benign flows to learn a baseline, got {len(flows)}")
        self._service = Counter(self._service_key(f) for f in flows)
        self._peer = Counter(self._peer_key(f) for f in flows)
        self._n = len(flows)
        by_service: dict[tuple[str, str, int], list[float]] = defaultdict(list)
        for f in flows:
            by_service[self._service_key(f)[:3]].append(math.log1p(float(f.bytes_out or 0)))
        self._bytes_stats = {
            k: (float(np.mean(v)), max(float(np.std(v)), 0.5)) for k, v in by_service.items()
        }
        x = self._features(flows, _Window(), leave_one_out=True)
        self._median = np.median(x, axis=0)
        q75, q25 = np.percentile(x, [75, 25], axis=0)
        self._scale = np.maximum(q75 - q25, 0.25)
        self._model = IsolationForest(n_estimators=200, random_state=self.seed).fit(x)
        scores = -self._model.score_samples(x)
        self._threshold = float(np.quantile(scores, 1.0 - self.fpr))
        self._state = _Window()

    def to_dict(self) -> dict[str, Any] | None:
        """The fitted baseline without pickle: the site context as JSON and the Isolation Forest as a
        skops file (base64), loaded back through the trusted-types check of ``safe_loads``."""
        if self._model is None:
            return None
        import skops.io as sio

        return {
            "detector": self.name,
            "version": self.version,
            "features": list(FEATURES),
            "n": self._n,
            "threshold": self._threshold,
            "service": [[*k, c] for k, c in sorted(self._service.items())],
            "peer": sorted([k, c] for k, c in self._peer.items()),
            "bytes_stats": [[*k, m, sd] for k, (m, sd) in sorted(self._bytes_stats.items())],
            "median": self._median.tolist(),
            "scale": self._scale.tolist(),
            "iforest_skops": base64.b64encode(
                sio.dumps(self._model, compression=zipfile.ZIP_DEFLATED)
            ).decode("ascii"),
        }

    def load_dict(self, data: Mapping[str, Any]) -> None:
        from healthsec.detect.ml.unsupervised import safe_loads

        if data.get("detector") != self.name:
            raise ValueError(f"baseline is for detector {data.get('detector')!r}, not {self.name!r}")
        if list(data["features"]) != list(FEATURES):
            raise ValueError(f"baseline features {data['features']} are not {list(FEATURES)}")
        model = safe_loads(base64.b64decode(data["iforest_skops"]), f"{self.name} baseline")
        if not isinstance(model, IsolationForest):
            raise ValueError(f"{self.name} baseline holds a {type(model).__name__}, not an Isolation Forest")
        self._model = model
        self._n = int(data["n"])
        self._threshold = float(data["threshold"])
        self._service = Counter(
            {(str(a), str(b), int(p), str(pr)): int(c) for a, b, p, pr, c in data["service"]}
        )
        self._peer = Counter({str(k): int(c) for k, c in data["peer"]})
        self._bytes_stats = {
            (str(a), str(b), int(p)): (float(m), float(sd)) for a, b, p, m, sd in data["bytes_stats"]
        }
        self._median = np.asarray(data["median"], dtype=np.float64)
        self._scale = np.asarray(data["scale"], dtype=np.float64)
        self._state = _Window()

    def score_many(self, events: Sequence[Event]) -> npt.NDArray[np.float64]:
        """Anomaly scores (higher = more anomalous) for flows, using a copy of the window state."""
        flows = [e for e in events if isinstance(e, Flow)]
        if self._model is None:
            raise RuntimeError("FlowAnomalyDetector.fit must run before scoring")
        x = self._features(flows, copy.deepcopy(self._state), leave_one_out=False)
        return -self._model.score_samples(x) if len(flows) else np.zeros(0)

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        if self._model is None:
            raise RuntimeError("FlowAnomalyDetector.fit must run before detect")
        flows = [e for e in events if isinstance(e, Flow)]
        if not flows:
            return []
        x = self._features(flows, self._state, leave_one_out=False)
        scores = -self._model.score_samples(x)
        groups: dict[tuple[str, datetime], list[int]] = defaultdict(list)
        for i in np.flatnonzero(scores > self._threshold):
            f = flows[int(i)]
            bucket = datetime.fromtimestamp(
                f.ts.timestamp() // self.window.total_seconds() * self.window.total_seconds(), tz=f.ts.tzinfo
            )
            groups[(f.src_ip or "?", bucket)].append(int(i))
        alerts = []
        for (src, bucket), idx in sorted(groups.items()):
            if len(idx) < self.min_flows:
                continue
            alerts.append(self._alert(src, bucket, [flows[i] for i in idx], x[idx], scores[idx]))
        self._fan_context.clear()
        return alerts

    def _alert(
        self,
        src: str,
        bucket: datetime,
        flows: list[Flow],
        x: npt.NDArray[np.float64],
        scores: npt.NDArray[np.float64],
    ) -> Alert:
        dev = np.abs((x - self._median) / self._scale).mean(axis=0)
        top = [int(i) for i in np.argsort(-dev)[:3]]
        mean = x.mean(axis=0)
        parts = []
        for j in top:
            direction = "above" if mean[j] > self._median[j] else "below"
            parts.append(
                f"{_FEATURE_TEXT[FEATURES[j]]} {_show(FEATURES[j], mean[j])} "
                f"({direction} the site baseline {_show(FEATURES[j], self._median[j])})"
            )
        dsts = sorted({f.dst_ip for f in flows if f.dst_ip})
        ports = sorted({f.dst_port for f in flows if f.dst_port is not None})
        who = self.hosts.get(src, src)
        explanation = (
            f"{len(flows)} flows from {who} to {len(dsts)} peer(s) on port(s) "
            f"{', '.join(map(str, ports[:5]))} scored above the benign threshold "
            f"{self._threshold:.3f} (max {scores.max():.3f}); top factors: " + "; ".join(parts) + "."
        )
        techniques = _techniques(FEATURES[top[0]], flows, self.zones)
        entities = [Entity(EntityKind.IP, src, EntityRole.ACTOR)]
        entities += [Entity(EntityKind.IP, d, EntityRole.TARGET) for d in dsts[:20]]
        severity = (
            Severity.HIGH if scores.max() > self._threshold + 0.05 or len(flows) >= 10 else Severity.MEDIUM
        )
        # A scan is the whole fan-out, not only the connections that crossed the threshold.
        evidence = tuple(
            dict.fromkeys([f.id for f in flows] + [c for f in flows for c in self._fan_context.get(f.id, ())])
        )
        return Alert(
            id=stable_id("alert", self.name, src, bucket.isoformat()),
            ts=min(f.ts for f in flows),
            detector=self.name,
            detector_version=self.version,
            title=f"Anomalous network behaviour from {who}",
            score=float(scores.max()),
            severity=severity,
            explanation=explanation,
            evidence=evidence,
            entities=tuple(entities),
            techniques=techniques,
            tactics=tuple(sorted({_TACTIC[t] for t in techniques if t in _TACTIC})),
            features={FEATURES[j]: round(float(mean[j]), 4) for j in top},
        )


_TACTIC = {
    "T1046": "discovery",
    "T1048": "exfiltration",
    "T1041": "exfiltration",
    "T1030": "exfiltration",
    "T1071.001": "command-and-control",
    "T1021.002": "lateral-movement",
    "T1486": "impact",
}


def _show(feature: str, value: float) -> str:
    if feature.startswith("log_bytes"):
        return _human_bytes(math.expm1(value))
    if feature == "log_duration":
        return f"{math.expm1(value):.1f} s"
    if feature in ("fan_out_10m", "repeats_60m"):
        return f"{math.expm1(value):.0f}"
    return f"{value:.2f}"


def _human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _techniques(top: str, flows: Sequence[Flow], zones: Mapping[str, str]) -> tuple[str, ...]:
    external = any(_zone_of(f.dst_ip, zones) == "external" for f in flows)
    if top == "fan_out_10m":
        return ("T1046",)
    if external and top in ("log_bytes_out", "bytes_out_z", "out_ratio"):
        return ("T1048", "T1041")
    if external and top in ("repeats_60m", "peer_rarity"):
        return ("T1071.001",)
    if any(f.dst_port == 445 for f in flows) and top in ("zone_port_rarity", "peer_rarity"):
        return ("T1021.002",)
    if top in ("log_bytes_out", "bytes_out_z", "log_bytes_in"):
        return ("T1486",) if any(f.dst_port == 445 for f in flows) else ("T1030",)
    return ()


class BeaconDetector(KnownPairsBaseline):
    """Command-and-control beaconing: regular connections from one host to an external peer it never used.

    For each (source, external destination) pair unseen in the baseline, inter-arrival times of the
    last ``window_minutes`` are tested for regularity (coefficient of variation below ``max_cv`` over
    at least ``min_flows`` connections), as RITA-style beacon analytics do.
    """

    name = "flow-beacon"
    version = "1.0"

    def __init__(
        self,
        assets: Iterable[Asset] = (),
        *,
        window_minutes: int = 120,
        min_flows: int = 8,
        max_cv: float = 0.25,
    ) -> None:
        self.zones = {a.ip: a.zone for a in assets if a.ip}
        self.hosts = {a.ip: a.name for a in assets if a.ip}
        self.window = timedelta(minutes=window_minutes)
        self.min_flows = min_flows
        self.max_cv = max_cv
        self._known: set[tuple[str, str]] = set()
        self._recent: dict[tuple[str, str], list[Flow]] = defaultdict(list)
        self._alert_start: dict[tuple[str, str], Flow] = {}
        self._evidence: dict[tuple[str, str], list[Flow]] = {}

    def fit(self, events: Iterable[Event]) -> None:
        self._known = {(f.src_ip or "", f.dst_ip or "") for f in events if isinstance(f, Flow)}

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        touched: set[tuple[str, str]] = set()
        for f in events:
            if not isinstance(f, Flow) or _zone_of(f.dst_ip, self.zones) != "external":
                continue
            pair = (f.src_ip or "", f.dst_ip or "")
            if pair in self._known:
                continue
            q = self._recent[pair]
            q.append(f)
            while q and f.ts - q[0].ts > self.window:
                q.pop(0)
            if len(q) >= self.min_flows:
                gaps = np.diff([x.ts.timestamp() for x in q])
                if (
                    gaps.mean() > 0
                    and gaps.std() / gaps.mean() <= self.max_cv
                    and pair not in self._alert_start
                ):
                    self._alert_start[pair] = q[0]
                    self._evidence[pair] = list(q[:-1])
            if pair in self._alert_start:
                self._evidence[pair].append(f)  # the alert keeps every beacon since it opened
                touched.add(pair)
        return [self._alert(p) for p in sorted(touched)]

    def _alert(self, pair: tuple[str, str]) -> Alert:
        src, dst = pair
        first = self._alert_start[pair]
        flows = self._evidence[pair]
        gaps = np.diff([x.ts.timestamp() for x in flows]) if len(flows) > 1 else np.array([0.0])
        cv = float(gaps.std() / gaps.mean()) if gaps.mean() > 0 else 0.0
        who = self.hosts.get(src, src)
        return Alert(
            id=stable_id("alert", self.name, src, dst, first.id),
            ts=first.ts,
            detector=self.name,
            detector_version=self.version,
            title=f"Beaconing from {who} to {dst}",
            score=max(0.0, 1.0 - cv),
            severity=Severity.HIGH,
            explanation=(
                f"{who} connected to external {dst}:{first.dst_port} {len(flows)} times in the last "
                f"{int(self.window.total_seconds() // 60)} min every {gaps.mean():.0f} s on average "
                f"(variation {cv:.2f}, limit {self.max_cv}); this pair never occurred in the baseline."
            ),
            evidence=tuple(f.id for f in flows),
            entities=(
                Entity(EntityKind.IP, src, EntityRole.ACTOR),
                Entity(EntityKind.IP, dst, EntityRole.ACTOR),
            ),
            techniques=("T1071.001", "T1573"),
            tactics=("command-and-control",),
            features={
                "connections": float(len(flows)),
                "mean_interval_s": round(float(gaps.mean()), 1),
                "interval_cv": round(cv, 3),
            },
        )
