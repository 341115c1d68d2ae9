"""Detector protocols: online (learn_one/score_one), batch (fit/score_many), and alerting detectors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

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
