"""Fixtures for the analysis tests: a small hospital inventory and the pinned ATT&CK copy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from healthsec.analyze.attack import AttackKB
from healthsec.ingest.attack_data import SHIPPED, load_attack
from healthsec.model import Alert, Asset, Criticality, Entity, EntityKind, Severity
from healthsec.model.assets import AssetProfile
from healthsec.model.vulns import Vulnerability

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def kb() -> AttackKB:
    return load_attack(SHIPPED)  # the shipped copy, whatever a user's `attack update` wrote


@pytest.fixture(autouse=True)
def _pinned_attack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands under test read the shipped ATT&CK copy, not a user copy on this machine."""
    monkeypatch.setenv("HEALTHSEC_ATTACK_DATA", str(SHIPPED))


@pytest.fixture
def hospital() -> tuple[list[Asset], list[AssetProfile], list[Vulnerability]]:
    assets = [
        Asset(id="web", name="portal-web", role="patient portal", zone="dmz", ip="10.0.0.5"),
        Asset(id="ws1", name="ws-001", role="workstation", zone="corporate", ip="10.1.0.11"),
        Asset(
            id="ehr",
            name="ehr-db",
            role="EHR database",
            zone="servers",
            ip="10.2.0.5",
            criticality=Criticality.CLINICAL_SUPPORT,
        ),
        Asset(
            id="pump",
            name="infusion-07",
            role="infusion pump",
            zone="medical-devices",
            ip="10.3.0.7",
            criticality=Criticality.LIFE_SUSTAINING,
        ),
        Asset(
            id="mon",
            name="monitor-12",
            role="patient monitor",
            zone="medical-devices",
            ip="10.3.0.12",
            criticality=Criticality.PATIENT_MONITORING,
        ),
        Asset(
            id="prn",
            name="printer-1",
            role="printer",
            zone="corporate",
            ip="10.1.0.99",
            criticality=Criticality.ADMINISTRATIVE,
        ),
        Asset(id="vpn", name="vendor-gw", role="vendor gateway", zone="vendor", ip="10.9.0.1"),
    ]
    profiles = [
        AssetProfile(asset_id="web", internet_facing=True),
        AssetProfile(asset_id="ws1", phishing_exposed=True),
        AssetProfile(asset_id="ehr", phi_records=250_000),
        AssetProfile(asset_id="vpn", vendor_remote=True),
    ]
    vulns = [
        Vulnerability.create(
            "web", "CVE-2024-1111", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", known_exploited=True
        ),
        Vulnerability.create("ehr", "CVE-2023-2222", "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"),
        Vulnerability.create(
            "pump", "CVE-2022-3333", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
        ),
    ]
    return assets, profiles, vulns


@pytest.fixture
def make_alert() -> Callable[..., Alert]:
    return _make_alert


def _make_alert(aid: str, ip: str, severity: Severity = Severity.HIGH, minute: int = 0) -> Alert:
    return Alert(
        id=aid,
        ts=T0.replace(minute=minute),
        detector="test",
        detector_version="1",
        title=f"suspicious traffic from {ip}",
        score=0.9,
        severity=severity,
        explanation="test alert",
        entities=(Entity(EntityKind.IP, ip),),
        techniques=("T1210",),
        tactics=("lateral-movement",),
    )
