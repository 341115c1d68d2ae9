"""Synthetic alerts and incidents for sharing tests, demos and the sharing benchmark (no real data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from healthsec.model import Alert, Entity, EntityKind, EntityRole, Incident, Severity

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
_TECHNIQUES = ("T1046", "T1190", "T1110", "T1021.002", "T1486", "T1071.001")


def sample_alerts(n: int, *, start: datetime = T0) -> list[Alert]:
    """``n`` alerts, each with an external actor IP, an internal target, a patient id, a user and a file."""
    return [
        Alert(
            id=f"alert-{i}",
            ts=start + timedelta(seconds=30 * i),
            detector="flows",
            detector_version="1",
            title=f"Port scan from 203.0.{i // 250 % 250}.{i % 250} exploiting CVE-2021-44228",
            score=0.87,
            severity=Severity.HIGH,
            explanation="many destinations in a short time",
            entities=(
                Entity(EntityKind.IP, f"203.0.{i // 250 % 250}.{i % 250}", EntityRole.ACTOR),
                Entity(EntityKind.IP, "10.20.0.5", EntityRole.TARGET),
                Entity(EntityKind.PATIENT, "MRN-0042-SECRET"),
                Entity(EntityKind.USER, "dr.jones"),
                Entity(EntityKind.FILE, f"evil{i % 7}'s.exe", EntityRole.ACTOR),
            ),
            techniques=(_TECHNIQUES[i % len(_TECHNIQUES)],),
            tactics=("discovery",),
        )
        for i in range(n)
    ]


def sample_incident(alerts: list[Alert], *, id: str = "incident-1") -> Incident:
    """One incident over (at most) the first two alerts, with an extra technique of its own."""
    return Incident(
        id=id,
        title="Reconnaissance against the PACS",
        first_seen=alerts[0].ts,
        last_seen=alerts[min(1, len(alerts) - 1)].ts,
        severity=Severity.HIGH,
        score=0.9,
        alert_ids=tuple(a.id for a in alerts[:2]),
        techniques=("T1046", "T1190"),
        tactics=("discovery", "initial_access"),
        summary="Two scans then an exploit attempt.",
    )
