"""Detector protocols: online (learn_one/score_one), batch (fit/score_many), and alerting detectors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from healthsec.model import Alert, Event


@runtime_checkable
class OnlineDetector(Protocol):
    """Learns a baseline one event at a time; scoring never changes state (higher = more anomalous)."""

    def learn_one(self, event: Event) -> None: ...

    def score_one(self, event: Event) -> float: ...


@runtime_checkable
class BatchDetector(Protocol):
    """Fits on a batch, scores a batch vectorised (higher = more anomalous)."""

    def fit(self, events: Sequence[Event]) -> None: ...

    def score_many(self, events: Sequence[Event]) -> npt.NDArray[np.float64]: ...


@runtime_checkable
class AlertingDetector(Protocol):
    """What the pipeline runs: learns a baseline from benign events, then turns events into alerts.

    ``detect`` may keep windowed state (counts per sender, per user) between calls; it never writes
    anywhere, it only returns alerts.
    """

    name: str
    version: str

    def fit(self, events: Iterable[Event]) -> None: ...

    def detect(self, events: Sequence[Event]) -> list[Alert]: ...


class CombinedDetector:
    """One registered detector made of parts that read the same events (a merge, not a second path).

    Each part keeps its own rules; its alerts are named ``<name>.<part>`` (the part labelled ``""``:
    ``<name>``) so an analyst still sees which checks fired, and the conformance kit accepts them as
    this detector's.
    """

    def __init__(self, name: str, version: str, parts: dict[str, AlertingDetector]) -> None:
        self.name = name
        self.version = version
        self.parts = parts
        self.detail = ""  # what ``healthsec detectors list`` says beside "running" (a part missing, say)
        for label, part in parts.items():
            part.name = f"{name}.{label}" if label else name

    def fit(self, events: Iterable[Event]) -> None:
        seen = list(events)
        for part in self.parts.values():
            part.fit(seen)

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        return [a for part in self.parts.values() for a in part.detect(events)]

    def to_dict(self) -> dict[str, Any] | None:
        """Every part's learnt baseline (``None`` when a part cannot save its own: it is refitted)."""
        states = {label: getattr(part, "to_dict", lambda: None)() for label, part in self.parts.items()}
        if any(not isinstance(st, Mapping) for st in states.values()):
            return None
        return {"detector": self.name, "version": self.version, "parts": states}

    def load_dict(self, data: Mapping[str, Any]) -> None:
        if data.get("detector") != self.name:
            raise ValueError(f"baseline is for detector {data.get('detector')!r}, not {self.name!r}")
        parts = data["parts"]
        if set(parts) != set(self.parts):
            raise ValueError(f"baseline parts {sorted(parts)} are not {sorted(self.parts)}")
        for label, part in self.parts.items():
            part.load_dict(parts[label])  # type: ignore[attr-defined]


class KnownPairsBaseline:
    """The baseline of a detector that learns known pairs (account, source), (host, peer): saved as JSON.

    The engine stores it when the learning period ends and a restarted worker loads it (``to_dict`` /
    ``load_dict``, as the HL7 and DICOM baselines), instead of refitting.
    """

    name: str
    version: str
    _known: set[tuple[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return {"detector": self.name, "version": self.version, "known": sorted(self._known)}

    def load_dict(self, data: Mapping[str, Any]) -> None:
        if data.get("detector") != self.name:
            raise ValueError(f"baseline is for detector {data.get('detector')!r}, not {self.name!r}")
        self._known = {(str(a), str(b)) for a, b in data["known"]}
