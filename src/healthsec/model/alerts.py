"""Alerts (one detection, explained) and incidents (alerts correlated into one story)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from healthsec.model.common import SCHEMA_VERSION, Entity, Severity, ensure_utc


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One detection: who raised it, how sure, about what, why, and which ATT&CK techniques it supports."""

    id: str
    ts: datetime
    detector: str
    detector_version: str
    title: str
    score: float
    severity: Severity
    explanation: str
    evidence: tuple[str, ...] = ()
    entities: tuple[Entity, ...] = ()
    techniques: tuple[str, ...] = ()
    tactics: tuple[str, ...] = ()
    features: Mapping[str, float | str | None] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", ensure_utc(self.ts))
        if not self.explanation.strip():
            raise ValueError(f"alert {self.id} has no explanation")


class IncidentStatus(StrEnum):
    OPEN = "open"
    INVESTIGATING = "investigating"
    CONTAINED = "contained"
    CLOSED = "closed"
    FALSE_POSITIVE = "false_positive"


@dataclass(frozen=True, slots=True, kw_only=True)
class Incident:
    """Alerts that tell one story: shared entities, close in time, along the kill chain."""

    id: str
    title: str
    first_seen: datetime
    last_seen: datetime
    severity: Severity
    score: float
    alert_ids: tuple[str, ...]
    entities: tuple[Entity, ...] = ()
    techniques: tuple[str, ...] = ()
    tactics: tuple[str, ...] = ()
    status: IncidentStatus = IncidentStatus.OPEN
    membership: Mapping[str, float] = field(default_factory=dict)
    summary: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "first_seen", ensure_utc(self.first_seen))
        object.__setattr__(self, "last_seen", ensure_utc(self.last_seen))
        if not self.alert_ids:
            raise ValueError(f"incident {self.id} has no alerts")
