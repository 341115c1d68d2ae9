"""Fixtures for the use-case tests: a small hospital in a store (SQLite and PostgreSQL)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from usecase_helpers import T0, alert

from healthsec.ingest.attack_data import SHIPPED
from healthsec.model import Asset, Criticality, Entity, EntityKind, Incident, Severity
from healthsec.store import Store


@pytest.fixture(autouse=True)
def _pinned_attack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use cases read the shipped ATT&CK copy, not a user copy on this machine."""
    monkeypatch.setenv("HEALTHSEC_ATTACK_DATA", str(SHIPPED))


@pytest.fixture
def hospital(store: Store) -> Store:
    """Three assets, five alerts on two hosts, two incidents."""
    store.assets.upsert_many(
        [
            Asset(id="ws1", name="ws-001", role="workstation", zone="corporate", ip="10.1.0.11"),
            Asset(
                id="pump",
                name="infusion-07",
                role="infusion pump",
                zone="medical-devices",
                ip="10.3.0.7",
                criticality=Criticality.LIFE_SUSTAINING,
            ),
            Asset(id="web", name="portal-web", role="patient portal", zone="dmz", ip="10.0.0.5"),
        ]
    )
    store.alerts.add_many(
        [
            alert("a1", "ws-001", 0, severity=Severity.LOW),
            alert("a2", "ws-001", 10, techniques=("T1003.001",)),
            alert("a3", "10.3.0.7", 20, severity=Severity.CRITICAL, detector="iomt", techniques=("T0831",)),
            alert("a4", "10.3.0.7", 30, detector="iomt", techniques=()),
            alert("a5", "elsewhere", 40, severity=Severity.MEDIUM),
        ]
    )
    store.incidents.upsert_many(
        [
            Incident(
                id="inc-ws",
                title="powershell then credential dumping on ws-001",
                first_seen=T0,
                last_seen=T0.replace(minute=10),
                severity=Severity.HIGH,
                score=0.8,
                alert_ids=("a1", "a2"),
                entities=(Entity(EntityKind.HOST, "ws-001"),),
                techniques=("T1059.001", "T1003.001"),
                tactics=("execution", "credential-access"),
            ),
            Incident(
                id="inc-pump",
                title="pump manipulated",
                first_seen=T0.replace(minute=20),
                last_seen=T0.replace(minute=30),
                severity=Severity.CRITICAL,
                score=0.9,
                alert_ids=("a3", "a4"),
                entities=(Entity(EntityKind.IP, "10.3.0.7"),),
                techniques=("T0831",),
                tactics=("impair-process-control",),
            ),
        ]
    )
    return store
