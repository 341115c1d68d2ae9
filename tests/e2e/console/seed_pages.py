"""Seed one organisation through the use cases (no SQL): an inventory with real product names, two CISA
ICSMA advisories matched to it with KEV / EPSS, a pump-spoofing incident whose playbook opens a case with
containment waiting for approval and NIS2 clocks, a partner and our published TAXII collection."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from healthsec.model import Alert, Asset, Entity, EntityKind, EntityRole, Incident, Severity
from healthsec.model.assets import Criticality
from healthsec.store import Store

T0 = datetime(2027, 3, 3, 14, 30, tzinfo=UTC)
ADVISORIES = ("2021/icsma-21-187-01.json", "2018/icsma-18-058-02.json")  # Philips Vue PACS, "Phillips" ISP


@dataclass(frozen=True)
class Seeded:
    case_id: str
    incident_id: str
    pump_request: str  # containment request on the patient-connected pump, awaiting approval


def seed_pages(store: Store, settings: object, shared_data: Path) -> Seeded:
    from healthsec.services import intel as intel_use
    from healthsec.services import share as share_use
    from healthsec.services.assets import upsert_assets
    from healthsec.services.cases import CaseService, ResponseConfig
    from healthsec.services.playbooks import on_incidents

    raw_assets = [
        {
            "id": "pacs-01",
            "name": "pacs-01",
            "role": "pacs",
            "zone": "imaging",
            "ip": "10.30.0.10",
            "criticality": 3,
            "vendor": "Philips",
            "product": "Vue PACS",
            "version": "12.2.1.0",
        },
        {
            "id": "isp-01",
            "name": "isp-01",
            "role": "imaging workstation",
            "zone": "imaging",
            "ip": "10.30.0.40",
            "criticality": 3,
            "vendor": "Philips",
            "product": "IntelliSpace Portal",
            "version": "8.0.2",
        },
        {
            "id": "cws-01",
            "name": "cws-01",
            "role": "clinical workstation",
            "zone": "clinical",
            "ip": "10.15.0.21",
            "criticality": 3,
        },
        {
            "id": "ws-001",
            "name": "ws-001",
            "role": "workstation",
            "zone": "corporate",
            "ip": "10.10.1.11",
            "criticality": 2,
        },
    ]
    upsert_assets(store, raw_assets, actor="seed")
    store.assets.upsert_many(
        [
            Asset(
                id="pump-13",
                name="pump-13",
                role="infusion_pump",
                zone="medical-devices",
                ip="10.20.1.13",
                criticality=Criticality.LIFE_SUSTAINING,
            )
        ]
    )
    intel_use.import_csaf(store, [str(shared_data / "cisa-csaf-icsma" / a) for a in ADVISORIES])
    kev = {
        "catalogVersion": "2025.08.25",
        "dateReleased": "2025-08-25T00:00:00Z",
        "vulnerabilities": [{"cveID": "CVE-2017-0144", "dateAdded": "2022-02-10"}],
    }
    intel_use.import_kev(store, gzip.compress(json.dumps(kev).encode()), "kev.json.gz")
    epss = "#model_version:v1,score_date:2026-01-30T00:00:00Z\ncve,epss,percentile\nCVE-2017-0144,0.94,0.99\n"
    intel_use.import_epss(store, epss.encode(), "epss.csv")
    intel_use.match_inventory(store)

    ents = (Entity(EntityKind.IP, "10.20.1.250"), Entity(EntityKind.DEVICE, "pump-13", EntityRole.TARGET))
    store.alerts.add_many(
        [
            Alert(
                id="al-pump",
                ts=T0,
                detector="iomt-telemetry",
                detector_version="1",
                title="Implausible infusion rate from pump-13",
                score=1.0,
                severity=Severity.CRITICAL,
                explanation="rate 999 ml/h outside the learnt range",
                entities=ents,
                tactics=("impair-process-control",),
                techniques=("T0856",),
            ),
        ]
    )
    inc = Incident(
        id="inc-pump",
        title="Spoofed telemetry on pump-13",
        first_seen=T0,
        last_seen=T0,
        severity=Severity.CRITICAL,
        score=1.0,
        alert_ids=("al-pump",),
        entities=ents,
        tactics=("impair-process-control",),
        techniques=("T0856",),
    )
    store.incidents.upsert_many([inc])
    on_incidents(store, [inc], settings, now=T0)  # the device_spoofing playbook opens the case
    svc = CaseService(store, ResponseConfig.from_settings(settings, store.org))
    (case,) = svc.list()
    shown = svc.show(case["id"])
    pump = next(c for c in shown["containment"] if c["target"] == "pump-13")

    share_use.save_partner(
        store, "north", "North Hospital", actor="seed", policy={"max_tlp": "green"}, read=["ours"]
    )
    share_use.publish(store, actor="seed", producer=store.org)
    store.audit.record("seed", "share.import", "north", added=3, rejected=0)
    return Seeded(case["id"], inc.id, pump["id"])
