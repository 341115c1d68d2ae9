"""Benign activity that looks like an attack: the hard negatives of a simulated hospital day.

Every hospital has it, and a detector that cannot tell it from an attack buries the analyst:

- ``pacs_backup`` (every night): the backup server queries the PACS with universal patient matching and
  moves the day's studies to its archive, with bulk DICOM transfers;
- ``night_shift`` (every night): a nurse covers another ward; the bed-management system assigns some of
  its patients to them (ADT A08 with a ROL segment) and they open records across that ward, from a
  workstation on that ward they had not used;
- ``research_export`` (from day 1): an approved research extract: a data manager exports 120 records in
  half an hour and copies the extract to the file server;
- ``vulnerability_scan`` (from day 1, the weekly scan): IT's scanner sweeps every asset on common ports,
  logs on to workstations with its service account (failing where it has no credentials), probes the
  HL7 port with a non-HL7 request and echoes the PACS under its own AE title;
- ``firmware_update`` (from day 1): biomedical engineering pushes firmware to four infusion pumps, which
  restart (a telemetry gap, then a stopped pump with its volume counter back at zero);
- ``new_device`` (from day 1): a new patient monitor, not yet in the inventory, joins the device VLAN.

The weekly and one-off activities start on day 1 so that the learning day has not seen them: the same
surprise a real site gets. The events are labelled benign; ``EventLog.hard_negatives`` names the kind
of each, so the evaluation can say which activity caused which false alert.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from healthsec.sim.adt import care_visit
from healthsec.sim.generate import EventLog, monitor_flow
from healthsec.sim.hospital import WARDS, Hospital
from healthsec.sim.vitals import vital_signs

SCAN_PORTS = (22, 80, 135, 139, 443, 445, 1433, 2575, 3389, 5900, 8080, 104)
NEW_MONITOR = ("monitor-17", "10.20.1.27")


def pacs_backup(h: Hospital, log: EventLog, rng: random.Random, start: datetime) -> None:
    t = start + timedelta(hours=1, minutes=rng.randint(0, 10))
    pacs, backup = h.ip("pacs-01"), h.ip("backup-01")

    def dicom(ts: datetime, operation: str, **extra: Any) -> None:
        log.message(ts=ts, protocol="dicom", message_type=operation, sender="BACKUP_01", receiver="PACS",
                    src_ip=backup, dst_ip=pacs, **extra)  # fmt: skip

    for i, modality in enumerate(("CT", "MR", "US")):
        query = {"query_level": "STUDY", "PatientID": "*", "ModalitiesInStudy": modality}
        dicom(t + timedelta(seconds=5 * i), "C-FIND", size=420, fields=query)
    t += timedelta(minutes=1)
    for p in rng.sample(h.patients, 30):
        move = {"move_destination": "BACKUP_ARCHIVE", "PatientID": p.patient_id}
        dicom(t, "C-MOVE", size=480, patient_id=p.patient_id, fields=move)
        log.flow(
            t,
            pacs,
            backup,
            104,
            "tcp",
            bytes_out=rng.randint(20_000_000, 200_000_000),
            bytes_in=rng.randint(5000, 20000),
            duration=rng.uniform(20, 120),
            app="DICOM",
            rng=rng,
        )
        t += timedelta(seconds=rng.uniform(30, 90))


def night_shift(h: Hospital, log: EventLog, rng: random.Random, start: datetime) -> None:
    nurses = [s for s in h.staff if s.role == "nurse"]
    nurse = nurses[(log.day * 7) % len(nurses)]
    ward = WARDS[(WARDS.index(nurse.ward) + 1 + log.day) % len(WARDS)]
    if ward == nurse.ward:
        ward = WARDS[(WARDS.index(ward) + 1) % len(WARDS)]
    patients = [p for p in h.patients if p.ward == ward]
    if not patients:
        return
    host = next(s.workstation for s in h.staff if s.ward == ward and s.workstation != nurse.workstation)
    t = start + timedelta(hours=22)
    log.logon(t, "dc-01", nurse.user, h.ip(host), success=True, logon_type=2)
    assigned = rng.sample(patients, min(3, len(patients)))
    for i, p in enumerate(assigned):
        visit = care_visit(h, p)
        visit["nurses"] = [*visit["nurses"], nurse.user]
        log.adt("A08", t + timedelta(minutes=1 + i), h, p, **visit)
    t += timedelta(minutes=10)
    for _ in range(14):
        p = rng.choice(assigned) if rng.random() < 0.5 else rng.choice(patients)
        log.access(
            ts=t,
            user=nurse.user,
            role=nurse.role,
            patient_id=p.patient_id,
            action="read",
            resource_type="Patient",
            workstation=host,
            outcome="success",
        )
        t += timedelta(minutes=rng.uniform(4, 8))


def research_export(h: Hospital, log: EventLog, rng: random.Random, start: datetime) -> None:
    t = start + timedelta(hours=10, minutes=rng.randint(0, 30))
    user, ws = "rsch001", "adm-008"
    log.logon(t, "dc-01", user, h.ip(ws), success=True, logon_type=2)
    for p in rng.sample(h.patients, 120):
        t += timedelta(seconds=rng.uniform(5, 25))
        log.access(
            ts=t,
            user=user,
            role="researcher",
            patient_id=p.patient_id,
            action="export",
            resource_type="Patient",
            workstation=ws,
            outcome="success",
        )
    log.flow(
        t + timedelta(minutes=2),
        h.ip(ws),
        h.ip("files-01"),
        445,
        "tcp",
        bytes_out=rng.randint(300_000_000, 600_000_000),
        bytes_in=rng.randint(20_000, 80_000),
        duration=rng.uniform(60, 180),
        app="SMB",
        rng=rng,
    )


def vulnerability_scan(h: Hospital, log: EventLog, rng: random.Random, start: datetime) -> None:
    t0 = start + timedelta(hours=12, minutes=rng.randint(0, 20))
    scanner = h.ip("vscan-01")
    targets = [a for a in h.assets.values() if a.ip and a.name != "vscan-01"]
    t = t0
    for a in targets:
        assert a.ip is not None
        for port in SCAN_PORTS:
            log.flow(
                t,
                scanner,
                a.ip,
                port,
                "tcp",
                bytes_out=60,
                bytes_in=rng.choice((0, 0, 60, 180)),
                duration=0.002,
                rng=rng,
            )
            t += timedelta(milliseconds=rng.uniform(50, 400))
    t = t0 + timedelta(minutes=20)
    for a in targets:
        if a.role != "workstation":
            continue
        ok = a.zone == "clinical"  # the scanner's credentials are deployed on clinical workstations only
        log.logon(t, a.name, "svc-vscan", scanner, success=ok, logon_type=3)
        t += timedelta(seconds=rng.uniform(2, 6))
    log.hl7(t0 + timedelta(minutes=5), "GET / HTTP/1.0\r\n\r\n", src_ip=scanner, dst_ip=h.ip("hl7-engine"))
    log.message(
        ts=t0 + timedelta(minutes=6),
        protocol="dicom",
        message_type="C-ECHO",
        sender="VSCAN",
        receiver="PACS",
        src_ip=scanner,
        dst_ip=h.ip("pacs-01"),
        size=68,
    )


def firmware_update(h: Hospital, log: EventLog, rng: random.Random, start: datetime) -> None:
    """The firmware transfers; the pumps' restarts are in their telemetry (:func:`firmware_pauses`)."""
    for pump, (begin, _) in firmware_pauses(h, rng, start).items():
        tp = begin - timedelta(minutes=4)
        log.flow(
            tp,
            h.ip("pump-server"),
            h.ip(pump),
            443,
            "tcp",
            bytes_out=rng.randint(30_000_000, 45_000_000),
            bytes_in=rng.randint(20_000, 60_000),
            duration=rng.uniform(90, 200),
            app="TLS",
            rng=rng,
        )


def firmware_pauses(h: Hospital, rng: random.Random, start: datetime) -> dict[str, tuple[datetime, datetime]]:
    """Which pumps restart for their update, and from when to when (no readings in between)."""
    t = start + timedelta(hours=15, minutes=rng.randint(0, 20))
    out = {}
    for i, pump in enumerate(sorted(h.names("infusion_pump"))[:4]):
        begin = t + timedelta(minutes=12 * i + 4)
        out[pump] = (begin, begin + timedelta(minutes=9))
    return out


def new_device(h: Hospital, log: EventLog, rng: random.Random, start: datetime) -> None:
    name, ip = NEW_MONITOR
    central = h.ip("central-station")
    t = start + timedelta(hours=9, minutes=rng.randint(20, 40))
    log.flow(t, ip, h.ip("dc-01"), 53, "udp", bytes_out=80, bytes_in=200, duration=0.01, app="DNS", rng=rng)
    base = {"heart_rate": 74.0, "spo2": 97.0, "resp_rate": 15.0, "systolic_bp": 122.0, "diastolic_bp": 76.0}
    while t < start + timedelta(days=1):
        hours = (t - start).total_seconds() / 3600
        log.reading(
            ts=t, device_id=name, device_type="patient_monitor", ip=ip, metrics=vital_signs(rng, base, hours)
        )
        if rng.random() < 0.1:
            monitor_flow(log, rng, t, ip, central)
        t += timedelta(minutes=5, seconds=rng.uniform(-5, 5))


NIGHTLY = {"pacs_backup": pacs_backup, "night_shift": night_shift}
ONE_OFF = {
    "research_export": research_export,
    "vulnerability_scan": vulnerability_scan,
    "firmware_update": firmware_update,
    "new_device": new_device,
}


def _rng(log: EventLog, kind: str) -> random.Random:
    return random.Random(f"{log.seed}:{log.day}:{kind}")


def pump_restarts(h: Hospital, log: EventLog, start: datetime) -> dict[str, tuple[datetime, datetime]]:
    """The pumps that restart today for a firmware update (none on the learning day)."""
    return firmware_pauses(h, _rng(log, "firmware_update"), start) if log.day >= 1 else {}


def hard_negatives(h: Hospital, log: EventLog, start: datetime) -> None:
    """Add the day's hard negatives: the nightly ones every day, the rest from day 1 on."""
    todo = {**NIGHTLY, **(ONE_OFF if log.day >= 1 else {})}
    for kind, make in todo.items():
        with log.hard_negative(kind):
            make(h, log, _rng(log, kind), start)
