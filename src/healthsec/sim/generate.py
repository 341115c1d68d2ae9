"""Benign hospital activity with daily rhythms: flows, host logs, telemetry, EHR accesses, HL7 and DICOM."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from healthsec.model import (
    ClinicalMessage,
    DeviceReading,
    Event,
    Flow,
    LogRecord,
    Provenance,
    RecordAccess,
    stable_id,
)
from healthsec.sim.adt import adt_text, care_visit, hl7_event
from healthsec.sim.hospital import Hospital, Patient
from healthsec.sim.vitals import monitor_baselines, vital_signs

SYSMON = "Microsoft-Windows-Sysmon/Operational"
BENIGN_PROCESSES = (
    ("C:\\Windows\\explorer.exe", "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "chrome.exe"),
    ("C:\\Windows\\explorer.exe", "C:\\Program Files\\EHRClient\\ehrclient.exe", "ehrclient.exe --site main"),
    (
        "C:\\Windows\\explorer.exe",
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
        "OUTLOOK.EXE",
    ),
    (
        "C:\\Windows\\explorer.exe",
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
        "WINWORD.EXE /n",
    ),
    ("C:\\Windows\\System32\\services.exe", "C:\\Windows\\System32\\svchost.exe", "svchost.exe -k netsvcs"),
    ("C:\\Windows\\explorer.exe", "C:\\Program Files\\PACSViewer\\viewer.exe", "viewer.exe"),
    ("C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\System32\\taskhostw.exe", "taskhostw.exe"),
)


def activity(hour: float) -> float:
    """Relative activity of a hospital by hour of day: busy 8-18, never zero (night shift)."""
    return 0.25 + 0.75 * max(0.0, math.sin(math.pi * (hour - 6.0) / 14.0)) if 6 <= hour <= 20 else 0.25


@dataclass
class EventLog:
    """Accumulates generated events with their ground-truth campaign (None = benign)."""

    seed: int
    day: int
    events: list[Event] = field(default_factory=list)
    labels: dict[str, str | None] = field(default_factory=dict)
    hard_negatives: dict[str, str] = field(default_factory=dict)  # event id -> kind of benign activity
    _seq: int = 0

    def next_id(self, kind: str) -> str:
        self._seq += 1
        return stable_id(kind, "sim", self.seed, self.day, self._seq)

    def add(self, event: Event, campaign: str | None = None) -> None:
        self.events.append(event)
        self.labels[event.id] = campaign

    @contextmanager
    def hard_negative(self, kind: str) -> Iterator[None]:
        """Events added inside are benign activity that looks like an attack (ground truth: benign)."""
        first = len(self.events)
        yield
        for e in self.events[first:]:
            if self.labels.get(e.id) is None:
                self.hard_negatives[e.id] = kind

    def hl7(self, t: datetime, text: str, *, src_ip: str, dst_ip: str) -> None:
        """Any bytes sent to the HL7 port, as the product's HL7 parser reads them."""
        eid = self.next_id("hl7")
        locator = f"sim://seed{self.seed}/day{self.day}/hl7"
        self.add(
            hl7_event(
                text, event_id=eid, t=t, src_ip=src_ip, dst_ip=dst_ip, locator=locator, record=self._seq
            )
        )

    def adt(self, trigger: str, t: datetime, h: Hospital, patient: Patient, **visit: Any) -> None:
        """A real HL7 ADT message about ``patient`` from the ADT system, as the EHR receives it."""
        eid = self.next_id("hl7")
        text = adt_text(
            trigger,
            t,
            control_id=f"ADT{self._seq}",
            patient_id=patient.patient_id,
            surname=patient.surname,
            **visit,
        )
        locator = f"sim://seed{self.seed}/day{self.day}/hl7"
        self.add(
            hl7_event(
                text,
                event_id=eid,
                t=t,
                src_ip=h.ip("hl7-engine"),
                dst_ip=h.ip("ehr-app"),
                locator=locator,
                record=self._seq,
            )
        )

    def prov(self, stream: str) -> Provenance:
        return Provenance(
            source="sim", locator=f"sim://seed{self.seed}/day{self.day}/{stream}", record=self._seq
        )

    # --- builders used by benign traffic and campaigns alike -------------------------------------------
    def flow(
        self,
        ts: datetime,
        src: str,
        dst: str,
        dport: int,
        proto: str,
        *,
        sport: int | None = None,
        bytes_out: int,
        bytes_in: int,
        duration: float,
        app: str | None = None,
        campaign: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        eid = self.next_id("flow")
        r = rng or random
        self.add(
            Flow(
                id=eid,
                ts=ts,
                source="sim.netflow",
                provenance=self.prov("netflow"),
                src_ip=src,
                dst_ip=dst,
                src_port=sport or r.randrange(49152, 65535),
                dst_port=dport,
                protocol=proto,
                duration=duration,
                bytes_out=bytes_out,
                bytes_in=bytes_in,
                packets_out=max(1, bytes_out // 900),
                packets_in=max(1, bytes_in // 900),
                application=app,
            ),
            campaign,
        )

    def message(self, *, campaign: str | None = None, **fields: Any) -> None:
        """An HL7 or DICOM message; ``fields`` are ClinicalMessage's own (protocol, message_type, ...)."""
        protocol = str(fields["protocol"])
        eid = self.next_id(protocol)
        self.add(
            ClinicalMessage(id=eid, source=f"sim.{protocol}", provenance=self.prov(protocol), **fields),
            campaign,
        )

    def reading(self, *, campaign: str | None = None, **fields: Any) -> None:
        """One telemetry message published over MQTT; ``fields`` are DeviceReading's own."""
        eid = self.next_id("reading")
        self.add(DeviceReading(id=eid, source="sim.mqtt", provenance=self.prov("mqtt"), **fields), campaign)

    def access(self, *, campaign: str | None = None, **fields: Any) -> None:
        """One EHR record access; ``fields`` are RecordAccess's own."""
        eid = self.next_id("access")
        self.add(RecordAccess(id=eid, source="sim.ehr", provenance=self.prov("ehr"), **fields), campaign)

    def log(
        self,
        ts: datetime,
        host: str,
        channel: str,
        event_id: int,
        fields: dict[str, object],
        *,
        provider: str,
        campaign: str | None = None,
    ) -> None:
        eid = self.next_id("log")
        self.add(
            LogRecord(
                id=eid,
                ts=ts,
                source="sim.winlog",
                provenance=self.prov("winlog"),
                host=host,
                channel=channel,
                event_id=event_id,
                provider=provider,
                fields=fields,
            ),
            campaign,
        )

    def process(
        self,
        ts: datetime,
        host: str,
        user: str,
        parent: str,
        image: str,
        cmdline: str,
        *,
        campaign: str | None = None,
    ) -> None:
        self.log(
            ts,
            host,
            SYSMON,
            1,
            {
                "Image": image,
                "CommandLine": cmdline,
                "ParentImage": parent,
                "User": f"HOSP\\{user}",
                "Computer": host,
            },
            provider="Microsoft-Windows-Sysmon",
            campaign=campaign,
        )

    def logon(
        self,
        ts: datetime,
        host: str,
        user: str,
        src_ip: str,
        *,
        success: bool,
        logon_type: int = 3,
        campaign: str | None = None,
    ) -> None:
        fields: dict[str, object] = {
            "TargetUserName": user,
            "IpAddress": src_ip,
            "LogonType": logon_type,
            "Computer": host,
        }
        if not success:
            fields["Status"] = "0xc000006d"
        self.log(
            ts,
            host,
            "Security",
            4624 if success else 4625,
            fields,
            provider="Microsoft-Windows-Security-Auditing",
            campaign=campaign,
        )


def _times(rng: random.Random, start: datetime, per_hour: float) -> list[datetime]:
    """Poisson arrivals over 24 h, modulated by the daily rhythm."""
    out: list[datetime] = []
    for hour in range(24):
        lam = per_hour * activity(hour + 0.5)
        n = _poisson(rng, lam)
        out.extend(start + timedelta(hours=hour, seconds=rng.uniform(0, 3600)) for _ in range(n))
    out.sort()
    return out


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def benign_day(
    h: Hospital,
    log: EventLog,
    rng: random.Random,
    start: datetime,
    restarts: Mapping[str, tuple[datetime, datetime]] | None = None,
) -> None:
    """One normal day of a hospital; ``restarts`` are pumps silent in that interval (then reset)."""
    ws = [a for a in h.assets.values() if a.role == "workstation"]
    clinicians = [s for s in h.staff if s.role != "admin_clerk"]
    ip = h.ip
    # Workstations: EHR, web via proxy, AD, DNS, file shares.
    for t in _times(rng, start, 260):
        a = rng.choice(ws)
        assert a.ip is not None
        kind = rng.random()
        if kind < 0.35:
            log.flow(
                t,
                a.ip,
                ip("ehr-app"),
                443,
                "tcp",
                bytes_out=rng.randint(800, 6000),
                bytes_in=rng.randint(4000, 90000),
                duration=rng.uniform(0.2, 30),
                app="TLS",
                rng=rng,
            )
        elif kind < 0.60:
            dst = rng.choice(h.web_pool) if rng.random() < 0.9 else f"203.0.113.{rng.randrange(1, 250)}"
            log.flow(
                t,
                a.ip,
                dst,
                443,
                "tcp",
                bytes_out=rng.randint(500, 9000),
                bytes_in=rng.randint(2000, 400000),
                duration=rng.uniform(0.1, 60),
                app="TLS",
                rng=rng,
            )
        elif kind < 0.75:
            log.flow(
                t,
                a.ip,
                ip("dc-01"),
                53,
                "udp",
                bytes_out=rng.randint(60, 120),
                bytes_in=rng.randint(100, 400),
                duration=0.01,
                app="DNS",
                rng=rng,
            )
        elif kind < 0.85:
            log.flow(
                t,
                a.ip,
                ip("dc-01"),
                rng.choice((88, 389)),
                "tcp",
                bytes_out=rng.randint(300, 2500),
                bytes_in=rng.randint(300, 3000),
                duration=rng.uniform(0.01, 1),
                app="Kerberos",
                rng=rng,
            )
        else:
            log.flow(
                t,
                a.ip,
                ip("files-01"),
                445,
                "tcp",
                bytes_out=rng.randint(1000, 200000),
                bytes_in=rng.randint(1000, 600000),
                duration=rng.uniform(0.5, 120),
                app="SMB",
                rng=rng,
            )
    # Logons and process starts on workstations.
    for t in _times(rng, start, 30):
        s = rng.choice(clinicians)
        ok = rng.random() > 0.04
        log.logon(t, "dc-01", s.user, ip(s.workstation), success=ok, logon_type=2)
        if ok:
            parent, image, cmd = rng.choice(BENIGN_PROCESSES)
            log.process(t + timedelta(seconds=rng.uniform(5, 60)), s.workstation, s.user, parent, image, cmd)
    for t in _times(rng, start, 70):
        s = rng.choice(clinicians)
        parent, image, cmd = rng.choice(BENIGN_PROCESSES)
        log.process(t, s.workstation, s.user, parent, image, cmd)
    _clinical(h, log, rng, start)
    _devices(h, log, rng, start, restarts or {})


def _clinical(h: Hospital, log: EventLog, rng: random.Random, start: datetime) -> None:
    ip = h.ip
    staff = {s.user: s for s in h.staff}
    # Admissions establish care relationships: the ADT system names the doctors in PV1 and the nurses in
    # ROL segments; the interface engine forwards them to the EHR.
    for p in h.patients:
        t = start + timedelta(minutes=rng.uniform(0, 30))
        log.adt("A01", t, h, p, **care_visit(h, p))
    for t in _times(rng, start, 45):
        p = rng.choice(h.patients)
        log.message(
            ts=t,
            protocol="hl7",
            message_type="ORU^R01",
            sender="LAB_LIS",
            receiver="EHR",
            src_ip=ip("lab-lis"),
            dst_ip=ip("hl7-engine"),
            size=rng.randint(900, 4000),
            patient_id=p.patient_id,
        )
        log.flow(
            t,
            ip("lab-lis"),
            ip("hl7-engine"),
            2575,
            "tcp",
            bytes_out=rng.randint(900, 4000),
            bytes_in=rng.randint(80, 200),
            duration=rng.uniform(0.01, 0.3),
            app="HL7",
            rng=rng,
        )
    # EHR record access: clinicians open records of patients in their care, occasionally cross-cover.
    clinicians = [s for s in h.staff if s.role != "admin_clerk"]
    for t in _times(rng, start, 90):
        s = rng.choice(clinicians)
        mine = [p for p in h.patients if s.user in p.care_team]
        ward = [p for p in h.patients if p.ward == s.ward]
        pool = mine if (mine and rng.random() < 0.8) else (ward or h.patients)
        p = rng.choice(pool)
        log.access(
            ts=t,
            user=s.user,
            role=s.role,
            patient_id=p.patient_id,
            action=rng.choice(("read", "read", "read", "write")),
            resource_type="Patient",
            workstation=staff[s.user].workstation,
            outcome="success",
        )
    # Imaging: modalities store studies; viewers query and retrieve single patients.
    for t in _times(rng, start, 14):
        mod = rng.choice(("ct-01", "mr-01", "us-01"))
        p = rng.choice(h.patients)
        log.message(
            ts=t,
            protocol="dicom",
            message_type="C-STORE",
            sender=mod.upper().replace("-", "_"),
            receiver="PACS",
            src_ip=ip(mod),
            dst_ip=ip("pacs-01"),
            size=rng.randint(5_000_000, 80_000_000),
            patient_id=p.patient_id,
        )
        log.flow(
            t,
            ip(mod),
            ip("pacs-01"),
            104,
            "tcp",
            bytes_out=rng.randint(5_000_000, 80_000_000),
            bytes_in=rng.randint(2000, 9000),
            duration=rng.uniform(5, 90),
            app="DICOM",
            rng=rng,
        )
    for t in _times(rng, start, 12):
        viewer = rng.choice(("viewer-01", "viewer-02"))
        ae = viewer.upper().replace("-", "_")
        p = rng.choice(h.patients)
        log.message(
            ts=t,
            protocol="dicom",
            message_type="C-FIND",
            sender=ae,
            receiver="PACS",
            src_ip=ip(viewer),
            dst_ip=ip("pacs-01"),
            size=rng.randint(300, 900),
            patient_id=p.patient_id,
            fields={"query_level": "STUDY", "PatientID": p.patient_id},
        )
        log.message(
            ts=t + timedelta(seconds=3),
            protocol="dicom",
            message_type="C-MOVE",
            sender=ae,
            receiver="PACS",
            src_ip=ip(viewer),
            dst_ip=ip("pacs-01"),
            size=rng.randint(300, 900),
            patient_id=p.patient_id,
            fields={"move_destination": ae, "PatientID": p.patient_id},
        )
        log.flow(
            t,
            ip("pacs-01"),
            ip(viewer),
            104,
            "tcp",
            bytes_out=rng.randint(5_000_000, 60_000_000),
            bytes_in=rng.randint(2000, 9000),
            duration=rng.uniform(5, 60),
            app="DICOM",
            rng=rng,
        )


def monitor_flow(log: EventLog, rng: random.Random, t: datetime, monitor_ip: str, central_ip: str) -> None:
    """A patient monitor's HL7 export session to the central station."""
    log.flow(
        t,
        monitor_ip,
        central_ip,
        2575 + 22000,
        "tcp",
        bytes_out=rng.randint(20000, 90000),
        bytes_in=rng.randint(500, 3000),
        duration=rng.uniform(30, 300),
        app="HL7",
        rng=rng,
    )


def _devices(
    h: Hospital,
    log: EventLog,
    rng: random.Random,
    start: datetime,
    restarts: Mapping[str, tuple[datetime, datetime]],
) -> None:
    ip = h.ip
    bases = monitor_baselines(h, log.seed)
    step = timedelta(minutes=5)
    for m in h.names("patient_monitor"):
        t = start + timedelta(seconds=rng.uniform(0, 300))
        while t < start + timedelta(days=1):
            hours = (t - start).total_seconds() / 3600
            log.reading(
                ts=t,
                device_id=m,
                device_type="patient_monitor",
                ip=ip(m),
                metrics=vital_signs(rng, bases[m], hours),
            )
            t += step + timedelta(seconds=rng.uniform(-5, 5))
        for t2 in _times(rng, start, 1.2):
            monitor_flow(log, rng, t2, ip(m), ip("central-station"))
    for pname in h.names("infusion_pump"):
        rate = rng.choice((25.0, 50.0, 75.0, 100.0, 125.0))
        t = start + timedelta(seconds=rng.uniform(0, 600))
        volume = 0.0
        off = restarts.get(pname)
        while t < start + timedelta(days=1):
            step = timedelta(minutes=10) + timedelta(seconds=rng.uniform(-5, 5))
            if off and t >= off[0]:  # restarting: silent, then stopped with its counter at zero
                t, volume, off = off[1], 0.0, None
                log.reading(
                    ts=t,
                    device_id=pname,
                    device_type="infusion_pump",
                    ip=ip(pname),
                    metrics={"rate_ml_h": 0.0, "volume_infused_ml": 0.0, "pressure_mmhg": 0.0},
                )
                log.hard_negatives[log.events[-1].id] = "firmware_update"
                t += timedelta(minutes=2)
                continue
            volume += rate / 6
            log.reading(
                ts=t,
                device_id=pname,
                device_type="infusion_pump",
                ip=ip(pname),
                metrics={
                    "rate_ml_h": rate,
                    "volume_infused_ml": round(volume, 1),
                    "pressure_mmhg": round(rng.gauss(120, 12), 1),
                },
            )
            t += step
        for t2 in _times(rng, start, 0.8):
            log.flow(
                t2,
                ip(pname),
                ip("pump-server"),
                443,
                "tcp",
                bytes_out=rng.randint(2000, 9000),
                bytes_in=rng.randint(1000, 4000),
                duration=rng.uniform(0.5, 4),
                app="TLS",
                rng=rng,
            )
