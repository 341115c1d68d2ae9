"""A synthetic hospital's topology: zones, assets with roles and IPs, staff, patients and care teams."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from healthsec.model import Asset, Criticality

ZONES: dict[str, str] = {
    "internet": "the internet edge (external addresses)",
    "dmz": "DMZ: VPN gateway and web proxy",
    "clinical": "clinical LAN: ward and clinic workstations",
    "devices": "medical-device VLAN: patient monitors, infusion pumps, central station",
    "imaging": "imaging: PACS, modalities, viewing stations",
    "ehr": "EHR and core servers: EHR, HL7 interface engine, lab, domain controller, file server",
    "admin": "administration: finance and HR workstations",
}

WARDS = ("icu", "cardiology", "oncology", "emergency", "surgery", "paediatrics")


@dataclass(frozen=True, slots=True)
class Staff:
    """A member of staff with an EHR account."""

    user: str
    role: str
    ward: str
    workstation: str
    surname: str


@dataclass(frozen=True, slots=True)
class Patient:
    """A patient admitted to a ward with a care team."""

    patient_id: str
    surname: str
    ward: str
    care_team: tuple[str, ...]
    vip: bool = False


@dataclass
class Hospital:
    """Everything the simulator knows about the place: assets by name, staff, patients."""

    assets: dict[str, Asset] = field(default_factory=dict)
    staff: list[Staff] = field(default_factory=list)
    patients: list[Patient] = field(default_factory=list)
    web_pool: list[str] = field(default_factory=list)

    def names(self, role: str) -> list[str]:
        return [a.name for a in self.assets.values() if a.role == role]

    def ip(self, name: str) -> str:
        ip = self.assets[name].ip
        assert ip is not None
        return ip


_SURNAMES = (
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Wood",
    "Jackson",
    "Clarke",
    "Patel",
    "Khan",
    "Lewis",
    "James",
    "Phillips",
    "Mason",
    "Mitchell",
    "Rose",
    "Davis",
    "Rodriguez",
    "Cox",
    "Alexander",
    "Garden",
    "Campbell",
    "Johnston",
    "Moore",
    "Smyth",
    "ONeill",
    "Doherty",
    "Stewart",
    "Quinn",
    "Murphy",
    "Graham",
    "McLaughlin",
    "Hamilton",
    "Murray",
    "Hughes",
    "Robertson",
    "Thomson",
    "Scott",
    "Macdonald",
    "Reid",
    "Clark",
    "Ross",
    "Young",
    "Watson",
    "Paterson",
    "Morrison",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Braun",
    "Hofmann",
    "Zimmermann",
    "Schmitt",
)


def _asset(
    name: str, role: str, zone: str, ip: str, crit: Criticality, device_type: str | None = None
) -> Asset:
    return Asset(
        id=f"asset:{name}", name=name, role=role, zone=zone, ip=ip, criticality=crit, device_type=device_type
    )


def build_hospital(
    seed: int, *, workstations: int = 40, monitors: int = 16, pumps: int = 16, patients: int = 180
) -> Hospital:
    """Build a deterministic hospital for ``seed``."""
    rng = random.Random(seed * 7919 + 1)
    h = Hospital()
    core = [
        ("vpn-gw", "vpn_gateway", "dmz", "10.0.0.10", Criticality.BUSINESS),
        ("web-proxy", "proxy", "dmz", "10.0.0.20", Criticality.BUSINESS),
        ("ehr-app", "ehr_server", "ehr", "10.40.0.10", Criticality.CLINICAL_SUPPORT),
        ("ehr-db", "database", "ehr", "10.40.0.11", Criticality.CLINICAL_SUPPORT),
        ("hl7-engine", "hl7_interface_engine", "ehr", "10.40.0.20", Criticality.CLINICAL_SUPPORT),
        ("lab-lis", "lab_system", "ehr", "10.40.0.21", Criticality.CLINICAL_SUPPORT),
        ("dc-01", "domain_controller", "ehr", "10.40.0.5", Criticality.BUSINESS),
        ("files-01", "file_server", "ehr", "10.40.0.30", Criticality.BUSINESS),
        ("backup-01", "backup_server", "ehr", "10.40.0.40", Criticality.BUSINESS),
        ("vscan-01", "vulnerability_scanner", "ehr", "10.40.0.50", Criticality.BUSINESS),
        ("pacs-01", "pacs", "imaging", "10.30.0.10", Criticality.CLINICAL_SUPPORT),
        ("ct-01", "modality", "imaging", "10.30.0.21", Criticality.CLINICAL_SUPPORT),
        ("mr-01", "modality", "imaging", "10.30.0.22", Criticality.CLINICAL_SUPPORT),
        ("us-01", "modality", "imaging", "10.30.0.23", Criticality.CLINICAL_SUPPORT),
        ("viewer-01", "pacs_viewer", "imaging", "10.30.0.31", Criticality.CLINICAL_SUPPORT),
        ("viewer-02", "pacs_viewer", "imaging", "10.30.0.32", Criticality.CLINICAL_SUPPORT),
        ("central-station", "central_station", "devices", "10.20.0.5", Criticality.PATIENT_MONITORING),
        ("pump-server", "pump_server", "devices", "10.20.0.6", Criticality.LIFE_SUSTAINING),
    ]
    for name, role, zone, ip, crit in core:
        h.assets[name] = _asset(name, role, zone, ip, crit)
    for i in range(1, workstations + 1):
        name = f"ws-{i:03d}"
        h.assets[name] = _asset(
            name, "workstation", "clinical", f"10.10.1.{i + 10}", Criticality.CLINICAL_SUPPORT
        )
    for i in range(1, 9):
        name = f"adm-{i:03d}"
        h.assets[name] = _asset(name, "workstation", "admin", f"10.50.0.{i + 10}", Criticality.ADMINISTRATIVE)
    for i in range(1, monitors + 1):
        name = f"monitor-{i:02d}"
        h.assets[name] = _asset(
            name,
            "patient_monitor",
            "devices",
            f"10.20.1.{i + 10}",
            Criticality.PATIENT_MONITORING,
            "patient_monitor",
        )
    for i in range(1, pumps + 1):
        name = f"pump-{i:02d}"
        h.assets[name] = _asset(
            name,
            "infusion_pump",
            "devices",
            f"10.20.2.{i + 10}",
            Criticality.LIFE_SUSTAINING,
            "infusion_pump",
        )
    ws_names = h.names("workstation")
    for i in range(1, workstations + 20 + 1):
        role = "physician" if i % 3 == 0 else "nurse"
        ward = WARDS[i % len(WARDS)]
        clinical_ws = [w for w in ws_names if w.startswith("ws-")]
        h.staff.append(
            Staff(
                user=f"{role[0]}{i:03d}",
                role=role,
                ward=ward,
                workstation=clinical_ws[(i - 1) % len(clinical_ws)],
                surname=rng.choice(_SURNAMES),
            )
        )
    for i in range(1, 9):
        h.staff.append(
            Staff(
                user=f"a{i:03d}",
                role="admin_clerk",
                ward="admin",
                workstation=f"adm-{i:03d}",
                surname=rng.choice(_SURNAMES),
            )
        )
    clinicians = [s for s in h.staff if s.role != "admin_clerk"]
    for i in range(1, patients + 1):
        ward = WARDS[rng.randrange(len(WARDS))]
        team = tuple(sorted(s.user for s in rng.sample([c for c in clinicians if c.ward == ward], 3)))
        h.patients.append(
            Patient(
                patient_id=f"MRN{100000 + i * 37}",
                surname=rng.choice(_SURNAMES),
                ward=ward,
                care_team=team,
                vip=(i % 60 == 0),
            )
        )
    h.web_pool = [f"198.51.100.{i}" for i in range(1, 120)] + [f"192.0.2.{i}" for i in range(1, 60)]
    return h
