"""IoMT telemetry baselines: per-device value ranges, message rate and inter-arrival, plus physiology."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from healthsec.detect.clinical import telemetry_physio
from healthsec.model import Alert, DeviceReading, Entity, EntityKind, EntityRole, Event, Severity, stable_id

#: ATT&CK for ICS techniques per rule: spoofed or altered readings, floods and silences.
TECHNIQUES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "implausible-vital": (("T0856",), ("evasion", "impair-process-control")),
    "inconsistent-vitals": (("T0856", "T0832"), ("impair-process-control", "impact")),
    "out-of-range": (("T0856", "T0832"), ("impair-process-control", "impact")),
    "message-flood": (("T0814", "T0856"), ("inhibit-response-function", "impair-process-control")),
    "telemetry-gap": (("T0815",), ("impact",)),
}
_SEVERITY = {
    "implausible-vital": Severity.HIGH,
    "inconsistent-vitals": Severity.HIGH,
    "out-of-range": Severity.MEDIUM,
    "message-flood": Severity.MEDIUM,
    "telemetry-gap": Severity.MEDIUM,
}


def _hour(ts: datetime) -> datetime:
    """Alerts group one device's findings of one rule per clock hour."""
    return ts.replace(minute=0, second=0, microsecond=0)


@dataclass(slots=True)
class _Running:
    """Welford mean/variance plus min and max, updated one value at a time."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    lo: float = math.inf
    hi: float = -math.inf

    def add(self, x: float) -> None:
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)
        self.lo = min(self.lo, x)
        self.hi = max(self.hi, x)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0

    def to_list(self) -> list[float | None]:
        """JSON-ready ``[n, mean, m2, lo, hi]`` (an empty running value's infinite bounds as null)."""
        return [self.n, self.mean, self.m2, *(v if math.isfinite(v) else None for v in (self.lo, self.hi))]

    @classmethod
    def from_list(cls, v: Sequence[float | None]) -> _Running:
        n, mean, m2, lo, hi = v
        return cls(
            int(n or 0),
            float(mean or 0.0),
            float(m2 or 0.0),
            math.inf if lo is None else float(lo),
            -math.inf if hi is None else float(hi),
        )


@dataclass(slots=True)
class _Device:
    metrics: dict[str, _Running] = field(default_factory=lambda: defaultdict(_Running))
    log_gap: _Running = field(default_factory=_Running)
    last_ts: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Hit:
    rule: str
    metric: str | None
    detail: str
    score: float


@dataclass(slots=True)
class TelemetryBaselineDetector:
    """Per-device behavioural baseline (value ranges, inter-arrival) and physiological checks.

    ``fit`` / ``learn_one`` learn from benign readings; ``learn_one(gate=...)`` skips readings that already
    score above the gate (a poisoning guard). ``score_one`` never changes state. ``detect`` also remembers
    each device's last timestamp between calls so inter-arrival spans batches.
    """

    range_tolerance: float = 0.1  # widen the learnt [min, max] by this share of the span
    range_z: float = 4.0  # and require this many standard deviations beyond the mean
    flood_z: float = 4.0  # log inter-arrival this many sd below normal ...
    flood_run: int = 5  # ... for this many consecutive messages
    gap_z: float = 4.0
    flood_factor: float = 4.0  # and at least this many times faster than the usual interval
    gap_factor: float = 6.0  # a gap must also be this many usual intervals (one lost message is not one)
    min_samples: int = 20
    name: str = "clinical.telemetry"
    version: str = "1.0"
    _devices: dict[str, _Device] = field(default_factory=dict, init=False)
    _last_seen: dict[str, datetime] = field(default_factory=dict, init=False)

    # ------------------------------------------------------------------ learning
    def fit(self, events: Iterable[Event]) -> None:
        readings = sorted((e for e in events if isinstance(e, DeviceReading)), key=lambda e: (e.ts, e.id))
        for reading in readings:
            self._learn(reading)

    def to_dict(self) -> dict[str, Any]:
        """The learnt per-device baselines as JSON (saved when the learning period ends)."""
        return {
            "detector": self.name,
            "version": self.version,
            "devices": {
                d: {
                    "metrics": {k: r.to_list() for k, r in sorted(dev.metrics.items())},
                    "log_gap": dev.log_gap.to_list(),
                    "last_ts": dev.last_ts.isoformat() if dev.last_ts else None,
                }
                for d, dev in sorted(self._devices.items())
            },
        }

    def load_dict(self, data: Mapping[str, Any]) -> None:
        if data.get("detector") != self.name:
            raise ValueError(f"baseline is for detector {data.get('detector')!r}, not {self.name!r}")
        devices = {}
        for d, dev in data["devices"].items():
            metrics: dict[str, _Running] = defaultdict(_Running)
            metrics.update({k: _Running.from_list(v) for k, v in dev["metrics"].items()})
            last = dev.get("last_ts")
            devices[str(d)] = _Device(
                metrics, _Running.from_list(dev["log_gap"]), datetime.fromisoformat(last) if last else None
            )
        self._devices = devices

    def learn_one(self, event: Event, gate: float | None = None) -> None:
        if not isinstance(event, DeviceReading):
            return
        if gate is not None and self.score_one(event) > gate:
            return
        self._learn(event)

    def _learn(self, r: DeviceReading) -> None:
        dev = self._devices.setdefault(r.device_id, _Device())
        for name, value in r.metrics.items():
            if value is not None:
                dev.metrics[name].add(value)
        if dev.last_ts is not None:
            gap = (r.ts - dev.last_ts).total_seconds()
            if gap >= 0:
                dev.log_gap.add(math.log1p(gap))
        dev.last_ts = r.ts

    # ------------------------------------------------------------------ scoring
    def _range_hits(self, r: DeviceReading) -> list[_Hit]:
        dev = self._devices.get(r.device_id)
        if dev is None:
            return []
        hits = []
        for name, value in r.metrics.items():
            stats = dev.metrics.get(name)
            if value is None or stats is None or stats.n < self.min_samples:
                continue
            span = stats.hi - stats.lo
            tol = self.range_tolerance * span
            if stats.lo - tol <= value <= stats.hi + tol:
                continue
            z = abs(value - stats.mean) / max(stats.std, 1e-9)
            if z < self.range_z:
                continue
            hits.append(
                _Hit(
                    "out-of-range",
                    name,
                    f"{name}={value:g} outside learnt [{stats.lo:g}, {stats.hi:g}] ({z:.1f} sd from mean)",
                    1.0 - 1.0 / (1.0 + z / self.range_z),
                )
            )
        return hits

    def range_findings(self, reading: DeviceReading) -> list[str]:
        """Why this reading's values fall outside the device's learnt ranges (empty when they do not)."""
        return [h.detail for h in self._range_hits(reading)]

    def _gap_z(self, device: str, gap_seconds: float) -> float | None:
        """How unusual the interval since the device's previous message is: a signed z on log(1 + gap),
        or 0 when the interval is within ``flood_factor``/``gap_factor`` of the usual one (a strictly
        periodic device has a tiny spread, so z alone would call one lost message a 12-sd event)."""
        dev = self._devices.get(device)
        if dev is None or dev.log_gap.n < self.min_samples:
            return None
        log_gap = math.log1p(max(gap_seconds, 0.0))
        ratio = math.exp(log_gap - dev.log_gap.mean)  # (1 + gap) / (1 + usual gap)
        if 1.0 / self.flood_factor < ratio < self.gap_factor:
            return 0.0
        return (log_gap - dev.log_gap.mean) / max(dev.log_gap.std, 0.05)

    def _physio_hits(self, r: DeviceReading) -> list[_Hit]:
        return [_Hit(f.rule, f.metric, f.detail, f.severity) for f in telemetry_physio.check(r.metrics)]

    def score_one(self, event: Event) -> float:
        """0..1, higher = more anomalous: physiology, ranges, and the gap since the device's last message."""
        if not isinstance(event, DeviceReading):
            return 0.0
        scores = [h.score for h in self._physio_hits(event) + self._range_hits(event)]
        dev = self._devices.get(event.device_id)
        if dev is not None and dev.last_ts is not None:
            z = self._gap_z(event.device_id, (event.ts - dev.last_ts).total_seconds())
            if z is not None:
                scores.append(min(1.0, abs(z) / (2 * self.flood_z)))
        return max(scores, default=0.0)

    # ------------------------------------------------------------------ alerting
    def detect(self, events: Sequence[Event]) -> list[Alert]:
        by_device: dict[str, list[DeviceReading]] = defaultdict(list)
        for e in events:
            if isinstance(e, DeviceReading):
                by_device[e.device_id].append(e)
        groups: dict[tuple[str, str, datetime], list[tuple[DeviceReading, _Hit]]] = defaultdict(list)
        for device, readings in by_device.items():
            readings.sort(key=lambda e: (e.ts, e.id))
            run: list[DeviceReading] = []
            last = self._last_seen.get(device)
            for r in readings:
                for hit in self._physio_hits(r) + self._range_hits(r):
                    groups[(device, hit.rule, _hour(r.ts))].append((r, hit))
                if last is not None:
                    gap = (r.ts - last).total_seconds()
                    z = self._gap_z(device, gap)
                    if z is not None and z <= -self.flood_z:
                        run.append(r)
                        if len(run) == self.flood_run:
                            for rr in run:
                                groups[(device, "message-flood", _hour(run[0].ts))].append(
                                    (
                                        rr,
                                        _Hit(
                                            "message-flood",
                                            None,
                                            f"{self.flood_run}+ messages arriving "
                                            f"{-z:.1f} sd faster than this device's usual interval",
                                            0.8,
                                        ),
                                    )
                                )
                        elif len(run) > self.flood_run:
                            groups[(device, "message-flood", _hour(run[0].ts))].append(
                                (r, _Hit("message-flood", None, "", 0.8))
                            )
                    else:
                        run = []
                    if z is not None and z >= self.gap_z:
                        groups[(device, "telemetry-gap", _hour(r.ts))].append(
                            (
                                r,
                                _Hit(
                                    "telemetry-gap",
                                    None,
                                    f"{gap:.0f} s of silence before this message "
                                    f"({z:.1f} sd longer than usual)",
                                    min(1.0, z / (2 * self.gap_z)),
                                ),
                            )
                        )
                last = r.ts
            if last is not None:
                self._last_seen[device] = last
        return [self._alert(device, rule, hits) for (device, rule, _), hits in groups.items()]

    def _alert(self, device: str, rule: str, hits: list[tuple[DeviceReading, _Hit]]) -> Alert:
        readings = [r for r, _ in hits]
        details = [h.detail for _, h in hits if h.detail]
        metrics = sorted({h.metric for _, h in hits if h.metric})
        techniques, tactics = TECHNIQUES[rule]
        first, lastr = readings[0], readings[-1]
        explanation = (
            f"device {device}: {len(readings)} reading(s) from {first.ts:%Y-%m-%d %H:%M:%S} to "
            f"{lastr.ts:%H:%M:%S}; first: {details[0] if details else rule}"
        )
        entities = [Entity(EntityKind.DEVICE, device, EntityRole.TARGET)]
        if first.ip:
            entities.append(Entity(EntityKind.IP, first.ip, EntityRole.TARGET))
        title = {
            "implausible-vital": "Physiologically impossible vital sign (spoofed or faulty reading)",
            "inconsistent-vitals": "Related vitals contradict each other (altered reading)",
            "out-of-range": "Telemetry outside the device's learnt range",
            "message-flood": "Telemetry arriving far faster than the device's baseline (injection or flood)",
            "telemetry-gap": "Device went silent far longer than its baseline",
        }[rule]
        return Alert(
            id=stable_id("alert", self.name, rule, device, first.id),
            ts=lastr.ts,
            detector=self.name,
            detector_version=self.version,
            title=title,
            score=round(max(h.score for _, h in hits), 4),
            severity=_SEVERITY[rule],
            explanation=explanation,
            evidence=tuple(r.id for r in readings[:500]),
            entities=tuple(entities),
            techniques=techniques,
            tactics=tactics,
            features={"rule": rule, "readings": float(len(readings)), "metrics": ",".join(metrics) or None},
        )
