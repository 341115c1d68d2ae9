"""Helpers for the use-case tests: a fixed time and an alert factory."""

from __future__ import annotations

from datetime import UTC, datetime

from healthsec.model import Alert, Entity, EntityKind, Severity

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def alert(aid: str, host: str, minute: int, *, severity: Severity = Severity.HIGH, **kw: object) -> Alert:
    return Alert(
        id=aid,
        ts=T0.replace(minute=minute),
        detector=str(kw.get("detector", "sigma")),
        detector_version="2",
        title=f"{aid} on {host}",
        score=0.8,
        severity=severity,
        explanation="rule matched",
        entities=(Entity(EntityKind.HOST, host),),
        techniques=tuple(kw.get("techniques", ("T1059.001",))),  # type: ignore[arg-type]
        features={"count": 3.0},
    )
