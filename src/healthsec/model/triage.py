"""An analyst's judgement on an alert (feedback for training) and the activity on an incident."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from healthsec.model.common import ensure_utc


class Verdict(StrEnum):
    """What the analyst found: the alert was right (true positive) or wrong (false positive)."""

    TRUE_POSITIVE = "true_positive"
    FALSE_POSITIVE = "false_positive"

    @classmethod
    def parse(cls, value: str) -> Verdict:
        """Accept ``true_positive``/``tp``/``true`` and ``false_positive``/``fp``/``false`` (any case)."""
        key = value.strip().lower().replace("-", "_").replace(" ", "_")
        aliases = {"tp": cls.TRUE_POSITIVE, "true": cls.TRUE_POSITIVE, "fp": cls.FALSE_POSITIVE}
        aliases["false"] = cls.FALSE_POSITIVE
        if key in aliases:
            return aliases[key]
        try:
            return cls(key)
        except ValueError:
            raise ValueError(
                f"verdict {value!r} is not one of true_positive (tp), false_positive (fp)"
            ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertFeedback:
    """One triage decision, kept with what a model needs to learn from it (detector, version, features)."""

    alert_id: str
    verdict: Verdict
    actor: str
    ts: datetime
    detector: str
    detector_version: str
    comment: str | None = None
    features: Mapping[str, float | str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", ensure_utc(self.ts))


class ActivityKind(StrEnum):
    STATUS = "status"
    ASSIGN = "assign"
    COMMENT = "comment"


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentActivity:
    """One line of an incident's history: a status change, an assignment (None: unassigned) or a comment."""

    incident_id: str
    kind: ActivityKind
    actor: str
    ts: datetime
    value: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", ensure_utc(self.ts))
