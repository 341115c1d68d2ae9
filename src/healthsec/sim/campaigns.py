"""Attack campaigns injected into a hospital day, each labelled with its name (ground truth)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from healthsec.sim.generate import EventLog
from healthsec.sim.hospital import Hospital
from healthsec.sim.vitals import monitor_baselines, vital_signs


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    """What the simulator tells about a campaign: name, story, ATT&CK techniques, when it starts."""

    name: str
    description: str
    techniques: tuple[str, ...]
    start: datetime


# Base64 of UTF-16 "IEX (New-Object Net.WebClient).DownloadString(...)" as droppers send it.
_PAYLOAD = "SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA"


def ransomware(h: Hospital, log: EventLog, rng: random.Random, start: datetime) -> CampaignInfo:
    """Phishing on a ward PC, C2 beaconing, discovery, credential theft, PsExec spread, encryption."""
    name = "ransomware"
    t0 = start + timedelta(hours=9, minutes=rng.randint(0, 50))
    ws = [a for a in h.assets.values() if a.role == "workstation" and a.zone == "clinical"]
    patient_zero = rng.choice(ws)
    pz = patient_zero.name
    pz_ip = h.ip(pz)
    user = next(s.user for s in h.staff if s.workstation == pz)
    c2 = f"203.0.113.{rng.randrange(150, 250)}"
    log.process(
        t0,
        pz,
        user,
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "powershell.exe -nop -w hidden -enc " + _PAYLOAD,
        campaign=name,
    )
    t = t0 + timedelta(seconds=20)
    end_beacon = t0 + timedelta(hours=3)
    while t < end_beacon:
        log.flow(
            t,
            pz_ip,
            c2,
            443,
            "tcp",
            bytes_out=rng.randint(300, 700),
            bytes_in=rng.randint(200, 1500),
            duration=rng.uniform(0.05, 0.4),
            app="TLS",
            campaign=name,
            rng=rng,
        )
        t += timedelta(seconds=rng.gauss(90, 6))
    t_disc = t0 + timedelta(minutes=40)
    log.process(
        t_disc,
        pz,
        user,
        "C:\\Windows\\System32\\cmd.exe",
        "C:\\Windows\\System32\\net.exe",
        'net group "Domain Admins" /domain',
        campaign=name,
    )
    targets = rng.sample([a for a in ws if a.name != pz], 30)
    for i, a in enumerate(targets):
        assert a.ip is not None
        log.flow(
            t_disc + timedelta(seconds=2 * i),
            pz_ip,
            a.ip,
            445,
            "tcp",
            bytes_out=rng.randint(60, 200),
            bytes_in=rng.randint(0, 120),
            duration=0.01,
            app="SMB",
            campaign=name,
            rng=rng,
        )
    t_cred = t_disc + timedelta(minutes=25)
    log.process(
        t_cred,
        pz,
        user,
        "C:\\Windows\\System32\\cmd.exe",
        "C:\\Windows\\System32\\rundll32.exe",
        "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 640 C:\\Users\\Public\\lsass.dmp full",
        campaign=name,
    )
    admin = "svc-backup"
    victims = [*(a.name for a in targets[:5]), "files-01"]
    t_lat = t_cred + timedelta(minutes=30)
    for i, v in enumerate(victims):
        tv = t_lat + timedelta(minutes=4 * i)
        log.flow(
            tv,
            pz_ip,
            h.ip(v),
            445,
            "tcp",
            bytes_out=rng.randint(400_000, 900_000),
            bytes_in=rng.randint(5000, 20000),
            duration=rng.uniform(2, 8),
            app="SMB",
            campaign=name,
            rng=rng,
        )
        log.logon(tv + timedelta(seconds=1), v, admin, pz_ip, success=True, logon_type=3, campaign=name)
        log.process(
            tv + timedelta(seconds=3),
            v,
            "SYSTEM",
            "C:\\Windows\\System32\\services.exe",
            "C:\\Windows\\PSEXESVC.exe",
            "C:\\Windows\\PSEXESVC.exe",
            campaign=name,
        )
    t_imp = t_lat + timedelta(hours=1, minutes=10)
    for i, v in enumerate(victims):
        tv = t_imp + timedelta(minutes=2 * i)
        log.process(
            tv,
            v,
            admin,
            "C:\\Windows\\System32\\cmd.exe",
            "C:\\Windows\\System32\\vssadmin.exe",
            "vssadmin.exe delete shadows /all /quiet",
            campaign=name,
        )
        if v != "files-01":
            for k in range(4):
                log.flow(
                    tv + timedelta(seconds=10 + 30 * k),
                    h.ip(v),
                    h.ip("files-01"),
                    445,
                    "tcp",
                    bytes_out=rng.randint(30_000_000, 90_000_000),
                    bytes_in=rng.randint(30_000_000, 90_000_000),
                    duration=rng.uniform(20, 40),
                    app="SMB",
                    campaign=name,
                    rng=rng,
                )
    return CampaignInfo(
        name,
        f"ransomware from phishing on {pz} spreading to {len(victims)} hosts",
        (
            "T1566.001",
            "T1059.001",
            "T1071.001",
            "T1069.002",
            "T1003.001",
            "T1021.002",
            "T1569.002",
            "T1490",
            "T1486",
        ),
        t0,
    )


def pacs_exfiltration(h: Hospital, log: EventLog, rng: random.Random, start: datetime) -> CampaignInfo:
    """A compromised viewing station enumerates the PACS with wildcard queries and moves studies out."""
    name = "pacs_exfiltration"
    t0 = start + timedelta(hours=21, minutes=rng.randint(0, 60))
    viewer = "viewer-02"
    vip = h.ip(viewer)
    for i in range(12):
        log.message(
            ts=t0 + timedelta(seconds=20 * i),
            protocol="dicom",
            message_type="C-FIND",
            sender="VIEWER_02",
            receiver="PACS",
            src_ip=vip,
            dst_ip=h.ip("pacs-01"),
            size=400,
            fields={"query_level": "PATIENT", "PatientName": f"{chr(65 + i)}*", "PatientID": "*"},
            campaign=name,
        )
    t = t0 + timedelta(minutes=6)
    for p in rng.sample(h.patients, 60):
        log.message(
            ts=t,
            protocol="dicom",
            message_type="C-MOVE",
            sender="VIEWER_02",
            receiver="PACS",
            src_ip=vip,
            dst_ip=h.ip("pacs-01"),
            size=500,
            patient_id=p.patient_id,
            fields={"move_destination": "EXT_ARCHIVE", "PatientID": p.patient_id},
            campaign=name,
        )
        t += timedelta(seconds=rng.uniform(15, 40))
    exfil = f"203.0.113.{rng.randrange(10, 100)}"
    for i in range(10):
        log.flow(
            t0 + timedelta(minutes=10 + 4 * i),
            vip,
            exfil,
            443,
            "tcp",
            bytes_out=rng.randint(300_000_000, 700_000_000),
            bytes_in=rng.randint(50_000, 200_000),
            duration=rng.uniform(120, 240),
            app="TLS",
            campaign=name,
            rng=rng,
        )
    return CampaignInfo(
        name,
        "PACS enumeration and bulk C-MOVE of studies to an external archive",
        ("T1119", "T1213", "T1041", "T1048"),
        t0,
    )


def device_spoofing(h: Hospital, log: EventLog, rng: random.Random, start: datetime) -> CampaignInfo:
    """A rogue host publishes replayed, implausibly steady vitals in a patient monitor's name."""
    name = "device_spoofing"
    t0 = start + timedelta(hours=14, minutes=rng.randint(0, 40))
    monitor = rng.choice(h.names("patient_monitor"))
    rogue = "10.20.1.250"
    base = monitor_baselines(h, log.seed)[monitor]
    frozen = vital_signs(rng, base, 14.0)
    frozen["spo2"] = 99.0
    for i in range(80):
        log.reading(
            ts=t0 + timedelta(seconds=30 * i),
            device_id=monitor,
            device_type="patient_monitor",
            ip=rogue,
            metrics=dict(frozen),
            campaign=name,
        )
    pump = rng.choice(h.names("infusion_pump"))
    for i in range(6):
        log.reading(
            ts=t0 + timedelta(minutes=5 + 5 * i),
            device_id=pump,
            device_type="infusion_pump",
            ip=rogue,
            metrics={"rate_ml_h": 999.0, "volume_infused_ml": None, "pressure_mmhg": 119.0},
            campaign=name,
        )
    return CampaignInfo(
        name, f"spoofed telemetry for {monitor} and {pump} from a rogue host", ("T0856", "T0832", "T0831"), t0
    )


def insider_snooping(h: Hospital, log: EventLog, rng: random.Random, start: datetime) -> CampaignInfo:
    """A nurse browses records of patients outside their care, a VIP among them, in the evening."""
    name = "insider_snooping"
    t0 = start + timedelta(hours=19, minutes=rng.randint(0, 50))
    nurse = rng.choice([s for s in h.staff if s.role == "nurse"])
    strangers = [p for p in h.patients if nurse.user not in p.care_team and p.ward != nurse.ward]
    vips = [p for p in strangers if p.vip]
    chosen = rng.sample(strangers, 35) + vips[:1]
    t = t0
    for p in chosen:
        log.access(
            ts=t,
            user=nurse.user,
            role=nurse.role,
            patient_id=p.patient_id,
            action="read",
            resource_type="Patient",
            workstation=nurse.workstation,
            outcome="success",
            campaign=name,
        )
        t += timedelta(seconds=rng.uniform(30, 120))
    return CampaignInfo(
        name, f"{nurse.role} browsing {len(chosen)} records outside their care", ("T1213", "T1078"), t0
    )


def credential_bruteforce(h: Hospital, log: EventLog, rng: random.Random, start: datetime) -> CampaignInfo:
    """Password spraying against the VPN gateway from the internet, ending in one successful logon."""
    name = "credential_bruteforce"
    t0 = start + timedelta(hours=3, minutes=rng.randint(0, 50))
    attacker = f"192.0.2.{rng.randrange(200, 250)}"
    users = [s.user for s in h.staff]
    t = t0
    for _ in range(240):
        log.logon(t, "vpn-gw", rng.choice(users), attacker, success=False, logon_type=3, campaign=name)
        t += timedelta(seconds=rng.uniform(0.5, 3))
    log.logon(
        t + timedelta(seconds=5),
        "vpn-gw",
        rng.choice(users),
        attacker,
        success=True,
        logon_type=3,
        campaign=name,
    )
    return CampaignInfo(name, "password spraying against the VPN gateway", ("T1110.003", "T1078"), t0)


CAMPAIGNS: dict[str, Callable[[Hospital, EventLog, random.Random, datetime], CampaignInfo]] = {
    "ransomware": ransomware,
    "pacs_exfiltration": pacs_exfiltration,
    "device_spoofing": device_spoofing,
    "insider_snooping": insider_snooping,
    "credential_bruteforce": credential_bruteforce,
}
