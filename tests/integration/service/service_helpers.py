"""Shared helpers for the service tests: seeded organisations, tokens, events, alerts, incidents, assets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from healthsec.detect.registry import DetectorSpec
from healthsec.model import Alert, Asset, Event, Incident, Severity
from healthsec.model.assets import Criticality
from healthsec.store import Store
from healthsec.store.auth import AuthStore

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def flow(i: int, prefix: str = "f") -> dict[str, Any]:
    return {
        "kind": "flow",
        "id": f"{prefix}-{i}",
        "ts": (T0 + timedelta(seconds=i)).isoformat(),
        "source": "zeek",
        "src_ip": f"10.0.{i // 250 % 250}.{i % 250 + 1}",
        "dst_ip": "10.1.0.9",
        "dst_port": 104 if i % 10 == 0 else 443,
        "bytes_out": 100 + i,
    }


@dataclass
class PortDetector:
    """A tiny rule: any flow to the DICOM port 104 raises an alert (stable id: idempotent re-runs)."""

    name: str = "test.dicom-port"
    version: str = "1"

    def fit(self, events: Sequence[Event]) -> None:
        del events

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        return [
            Alert(
                id=f"al-{e.id}",
                ts=e.ts,
                detector=self.name,
                detector_version=self.version,
                title="DICOM port contacted",
                score=0.9,
                severity=Severity.MEDIUM,
                explanation="flow to port 104",
                evidence=(e.id,),
            )
            for e in events
            if getattr(e, "dst_port", None) == 104
        ]


# registered like any detector: the service runs it with HEALTHSEC_DETECTOR_PLUGINS / HEALTHSEC_DETECTORS
PORT_SPEC = DetectorSpec(
    "test.dicom-port",
    "1",
    frozenset({"flow"}),
    "nothing",
    "test rule: flows to port 104",
    lambda _: PortDetector(),
)


@dataclass
class Tenant:
    org: str
    tokens: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


ROLES = ("admin", "analyst", "auditor", "sensor", "partner")


def make_tenant(store: Store, org: str) -> Tenant:
    auth = AuthStore(store.engine)
    auth.create_org(org)
    tokens = {role: auth.create_token(org, role, f"{role}-{org}")[1] for role in ROLES}
    return Tenant(org, tokens)


def seed(store: Store, org: str) -> dict[str, str]:
    """One alert, one incident, one asset in ``org``; return their ids."""
    s = store.for_org(org)
    alert = Alert(
        id=f"al-{org}",
        ts=T0,
        detector="seed",
        detector_version="1",
        title=f"secret alert of {org}",
        score=0.5,
        severity=Severity.HIGH,
        explanation="seeded",
    )
    s.alerts.add_many([alert])
    incident = Incident(
        id=f"in-{org}",
        title=f"incident of {org}",
        first_seen=T0,
        last_seen=T0,
        severity=Severity.HIGH,
        score=0.5,
        alert_ids=(alert.id,),
    )
    s.incidents.upsert_many([incident])
    asset = Asset(
        id=f"as-{org}",
        name="pacs",
        role="pacs",
        zone="clinical",
        ip="10.9.9.9",
        criticality=Criticality.PATIENT_MONITORING,
    )
    s.assets.upsert_many([asset])
    return {"alert": alert.id, "incident": incident.id, "asset": asset.id}


@dataclass
class World:
    """A test client over a store with two seeded tenants."""

    client: TestClient
    store: Store
    a: Tenant
    b: Tenant
    seeded_b: dict[str, str]
    seeded_a: dict[str, str]
    sink: Any = None

    def flush(self) -> None:
        """Detect the open hour now (the service does it after detection_idle_s without events)."""
        self.sink.detection.tick(final=True)
