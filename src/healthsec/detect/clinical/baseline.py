"""Site-baseline clinical detectors: care-relationship access, device telemetry integrity, PACS misuse."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from healthsec.model import (
    Alert,
    ClinicalMessage,
    DeviceReading,
    Entity,
    EntityKind,
    EntityRole,
    Event,
    RecordAccess,
    Severity,
    stable_id,
)
from healthsec.model.care import CareContext
from healthsec.privacy.pseudonymise import patient_pseudonym


def _check(name: str, data: Mapping[str, Any]) -> None:
    if data.get("detector") != name:
        raise ValueError(f"baseline is for detector {data.get('detector')!r}, not {name!r}")


def _bucket(ts: datetime, minutes: int) -> datetime:
    step = minutes * 60
    return datetime.fromtimestamp(ts.timestamp() // step * step, tz=ts.tzinfo)


class CareRelationshipDetector:
    """Flags EHR reads of patients with no care relationship (not a named provider, no shared ward).

    Care relationships come from the hospital's HL7 ADT feed as any interface engine sends it: the
    providers named in PV1 (attending, referring, consulting, admitting) and ROL segments (added, or
    removed by action ``DE``), the ward in PV1-3 and the VIP indicator in PV1-16 (the standard fields
    :mod:`healthsec.ingest.hl7.visit` reads), and, when the site has loaded one, a FHIR directory of
    Encounter and CareTeam participants (:class:`~healthsec.model.care.CareContext`). A user's wards are
    learnt from the patients they are named for. Occasional cross-cover is normal, so an alert needs
    ``min_accesses`` unrelated records by one user within ``window_minutes``, except a VIP record, which
    alerts on the first unrelated read. Patients enter alerts only as ``patient_pseudonym(patient_key,
    ...)``, and not at all without a key.
    """

    name = "ehr-care-relationship"
    version = "1.0"

    def __init__(
        self,
        *,
        min_accesses: int = 5,
        window_minutes: int = 60,
        patient_key: bytes | None = None,
        local_authority: str | None = None,
        context: CareContext | None = None,
        defer_to_context: bool = False,
    ) -> None:
        # beside the FHIR access analytics (one ``clinical.access`` detector): leave the users the care
        # context knows, and VIP records, to them, so one read is not flagged twice
        self.defer_to_context = defer_to_context
        self.min_accesses = min_accesses
        self.window = window_minutes
        self.patient_key = patient_key
        self.local_authority = local_authority
        self.context = context
        self._team: dict[str, set[str]] = defaultdict(set)
        self._ward_of_patient: dict[str, str] = {}
        self._vip: set[str] = set()
        self._user_wards: dict[str, set[str]] = defaultdict(set)
        self._open: dict[tuple[str, datetime], list[RecordAccess]] = defaultdict(list)

    def _learn_adt(self, m: ClinicalMessage) -> None:
        if m.protocol != "hl7" or not m.message_type.startswith("ADT") or not m.patient_id:
            return
        pid = m.patient_id
        ward = m.fields.get("location")
        if isinstance(ward, str) and ward:
            self._ward_of_patient[pid] = ward
        else:
            ward = self._ward_of_patient.get(pid)
        providers = m.fields.get("care_providers")
        for p in providers if isinstance(providers, list) else ():
            if not isinstance(p, Mapping) or not p.get("id"):
                continue
            user = str(p["id"])
            if str(p.get("action") or "AD").upper() == "DE":
                self._team[pid].discard(user)
                continue
            self._team[pid].add(user)
            if isinstance(ward, str):
                self._user_wards[user].add(ward)
        if m.fields.get("vip") is True:
            self._vip.add(pid)

    def _related(self, a: RecordAccess) -> bool:
        pid = a.patient_id or ""
        if a.user in self._team.get(pid, ()):
            return True
        if self.context is not None and self.context.has_relationship(a.user, pid):
            return True
        ward = self._ward_of_patient.get(pid)
        return ward is not None and ward in self._user_wards.get(a.user, ())

    def _deferred(self, a: RecordAccess) -> bool:
        ctx = self.context
        if not self.defer_to_context or ctx is None:
            return False
        return ctx.knows_user(ctx.canonical_user(a.user)) or a.patient_id in ctx.vip_patients

    def _is_vip(self, patient_id: str | None) -> bool:
        if patient_id in self._vip:
            return True
        return self.context is not None and patient_id in self.context.vip_patients

    def fit(self, events: Iterable[Event]) -> None:
        for e in events:
            if isinstance(e, ClinicalMessage):
                self._learn_adt(e)

    def to_dict(self) -> dict[str, Any]:
        """What the ADT feed taught (care teams, wards, VIP flags) as JSON; patients appear as the
        pseudonymised ids the events carry."""
        return {
            "detector": self.name,
            "version": self.version,
            "team": {p: sorted(u) for p, u in sorted(self._team.items())},
            "ward_of_patient": dict(sorted(self._ward_of_patient.items())),
            "vip": sorted(self._vip),
            "user_wards": {u: sorted(w) for u, w in sorted(self._user_wards.items())},
        }

    def load_dict(self, data: Mapping[str, Any]) -> None:
        _check(self.name, data)
        self._team = defaultdict(set, {str(p): set(u) for p, u in data["team"].items()})
        self._ward_of_patient = {str(p): str(w) for p, w in data["ward_of_patient"].items()}
        self._vip = set(data["vip"])
        self._user_wards = defaultdict(set, {str(u): set(w) for u, w in data["user_wards"].items()})

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        touched: set[tuple[str, datetime]] = set()
        for e in events:
            if isinstance(e, ClinicalMessage):
                self._learn_adt(e)
            elif (
                isinstance(e, RecordAccess)
                and e.patient_id
                and not self._deferred(e)
                and not self._related(e)
            ):
                key = (e.user, _bucket(e.ts, self.window))
                self._open[key].append(e)
                touched.add(key)
        alerts = []
        for key in sorted(touched):
            accesses = self._open[key]
            vip = [a for a in accesses if self._is_vip(a.patient_id)]
            if len(accesses) >= self.min_accesses or vip:
                alerts.append(self._alert(key, accesses, len(vip)))
        return alerts

    def _alert(self, key: tuple[str, datetime], accesses: list[RecordAccess], vips: int) -> Alert:
        user, bucket = key
        patients = sorted({a.patient_id for a in accesses if a.patient_id})
        ws = sorted({a.workstation for a in accesses if a.workstation})
        text = (
            f"{user} opened {len(patients)} patient record(s) with no care relationship "
            "(not on the care team, "
            f"no shared ward) within {self.window} min from {', '.join(ws) or 'unknown workstations'}"
        )
        if vips:
            text += f"; {vips} of them flagged VIP"
        entities = [Entity(EntityKind.USER, user, EntityRole.ACTOR)]
        entities += [Entity(EntityKind.HOST, w, EntityRole.ACTOR) for w in ws]
        if self.patient_key is not None:
            secret, local = self.patient_key, self.local_authority
            tokens = [patient_pseudonym(secret, p, local_authority=local) for p in patients]
            entities += [Entity(EntityKind.PATIENT, t, EntityRole.TARGET) for t in tokens]
        return Alert(
            id=stable_id("alert", self.name, user, bucket.isoformat()),
            ts=min(a.ts for a in accesses),
            detector=self.name,
            detector_version=self.version,
            title=f"Possible record snooping by {user}" + (" (VIP record)" if vips else ""),
            score=min(1.0, len(patients) / (4 * self.min_accesses)) if not vips else 1.0,
            severity=Severity.HIGH if vips or len(patients) >= 3 * self.min_accesses else Severity.MEDIUM,
            explanation=text + ".",
            evidence=tuple(a.id for a in accesses),
            entities=tuple(entities),
            techniques=("T1213", "T1078"),
            tactics=("collection",),
            features={"unrelated_records": float(len(patients)), "vip_records": float(vips)},
        )


# Physiological limits for adult patients (outside: not a reading a sensor would report for a living patient).
PLAUSIBLE = {
    "heart_rate": (20.0, 250.0),
    "spo2": (50.0, 100.0),
    "resp_rate": (4.0, 60.0),
    "systolic_bp": (50.0, 250.0),
    "diastolic_bp": (25.0, 150.0),
    "rate_ml_h": (0.0, 500.0),  # 0: a stopped or standby pump (after a restart, between infusions)
}


class TelemetryIntegrityDetector:
    """Per-device baselines: publishing address, value ranges, variability; plus physiological plausibility.

    Spoofed or replayed telemetry shows as a reading from an address the device never used, values
    outside plausible or learnt ranges, vitals that stop varying (a frozen replay), or diastolic above
    systolic. Findings are summarised per device per ``window_minutes``.
    """

    name = "iomt-telemetry"
    version = "1.0"

    def __init__(self, *, window_minutes: int = 15, z_limit: float = 6.0, frozen_run: int = 6) -> None:
        self.window = window_minutes
        self.z_limit = z_limit
        self.frozen_run = frozen_run
        self._ips: dict[str, set[str]] = defaultdict(set)
        self._stats: dict[tuple[str, str], tuple[float, float, float, float]] = {}
        self._last: dict[str, tuple[tuple[float | None, ...], int]] = {}
        self._counters: set[tuple[str, str]] = set()
        self._open: dict[tuple[str, datetime], list[tuple[DeviceReading, list[str]]]] = defaultdict(list)

    def fit(self, events: Iterable[Event]) -> None:
        values: dict[tuple[str, str], list[float]] = defaultdict(list)
        for e in events:
            if isinstance(e, DeviceReading):
                if e.ip:
                    self._ips[e.device_id].add(e.ip)
                for k, v in e.metrics.items():
                    if v is not None:
                        values[(e.device_id, k)].append(float(v))
        for key, vs in values.items():
            if len(vs) > 2 and all(b >= a for a, b in itertools.pairwise(vs)):
                self._counters.add(key)  # a cumulative counter (volume infused): its level says nothing
                continue
            sd = statistics.pstdev(vs) if len(vs) > 1 else 0.0
            self._stats[key] = (statistics.fmean(vs), sd, min(vs), max(vs))

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.name,
            "version": self.version,
            "ips": {d: sorted(ips) for d, ips in sorted(self._ips.items())},
            "stats": [[d, k, *st] for (d, k), st in sorted(self._stats.items())],
            "counters": sorted([d, k] for d, k in self._counters),
        }

    def load_dict(self, data: Mapping[str, Any]) -> None:
        _check(self.name, data)
        self._ips = defaultdict(set, {str(d): set(ips) for d, ips in data["ips"].items()})
        self._stats = {
            (str(d), str(k)): (float(m), float(sd), float(lo), float(hi))
            for d, k, m, sd, lo, hi in data["stats"]
        }
        self._counters = {(str(d), str(k)) for d, k in data["counters"]}

    def _findings(self, r: DeviceReading) -> list[str]:
        out = []
        if r.ip and self._ips.get(r.device_id) and r.ip not in self._ips[r.device_id]:
            out.append(
                f"published from {r.ip}, never seen for this device (known: "
                f"{', '.join(sorted(self._ips[r.device_id]))})"
            )
        stopped = r.metrics.get("rate_ml_h") == 0.0  # no infusion running: line pressure says nothing
        for k, v in r.metrics.items():
            if v is None or (stopped and k == "pressure_mmhg"):
                continue
            lo_hi = PLAUSIBLE.get(k)
            if lo_hi and not lo_hi[0] <= v <= lo_hi[1]:
                out.append(f"{k} = {v:g} outside physiological/device limits {lo_hi[0]:g}-{lo_hi[1]:g}")
                continue
            st = self._stats.get((r.device_id, k))
            if st and st[1] > 0 and abs(v - st[0]) / st[1] > self.z_limit:
                out.append(
                    f"{k} = {v:g} is {abs(v - st[0]) / st[1]:.1f} standard deviations from this "
                    f"device's baseline mean {st[0]:.1f}"
                )
        sys_bp, dia_bp = r.metrics.get("systolic_bp"), r.metrics.get("diastolic_bp")
        if sys_bp is not None and dia_bp is not None and dia_bp >= sys_bp:
            out.append(f"diastolic {dia_bp:g} not below systolic {sys_bp:g}")
        varying = [k for k in r.metrics if (st := self._stats.get((r.device_id, k))) and st[1] > 0.5]
        sig = tuple(r.metrics.get(k) for k in sorted(varying))
        prev, run = self._last.get(r.device_id, ((), 0))
        run = run + 1 if sig and sig == prev else 1
        self._last[r.device_id] = (sig, run)
        if run >= self.frozen_run:
            out.append(
                f"{len(varying)} normally varying vitals identical for {run} consecutive readings "
                "(frozen or replayed)"
            )
        return out

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        touched: set[tuple[str, datetime]] = set()
        for e in events:
            if isinstance(e, DeviceReading):
                findings = self._findings(e)
                if findings:
                    key = (e.device_id, _bucket(e.ts, self.window))
                    self._open[key].append((e, findings))
                    touched.add(key)
        return [self._alert(k, self._open[k]) for k in sorted(touched)]

    def _alert(self, key: tuple[str, datetime], hits: list[tuple[DeviceReading, list[str]]]) -> Alert:
        device, bucket = key
        kinds: dict[str, int] = defaultdict(int)
        for _, fs in hits:
            for f in fs:
                kinds[f] += 1
        top = sorted(kinds.items(), key=lambda kv: -kv[1])[:3]
        ips = sorted({r.ip for r, _ in hits if r.ip})
        dtype = hits[0][0].device_type or "device"
        entities = [Entity(EntityKind.DEVICE, device, EntityRole.TARGET)]
        entities += [
            Entity(EntityKind.IP, ip, EntityRole.ACTOR) for ip in ips if ip not in self._ips.get(device, ())
        ]
        life = dtype == "infusion_pump"
        return Alert(
            id=stable_id("alert", self.name, device, bucket.isoformat()),
            ts=min(r.ts for r, _ in hits),
            detector=self.name,
            detector_version=self.version,
            title=f"Implausible or spoofed telemetry from {dtype} {device}",
            score=min(1.0, len(hits) / 10),
            severity=Severity.CRITICAL if life else Severity.HIGH,
            explanation=f"{len(hits)} reading(s) from {device} in {self.window} min failed integrity checks: "
            + "; ".join(f"{f} ({n}x)" for f, n in top)
            + ".",
            evidence=tuple(r.id for r, _ in hits),
            entities=tuple(entities),
            techniques=("T0856", "T0832") + (("T0831",) if life else ()),
            tactics=("impair-process-control",),
            features={"readings": float(len(hits))},
        )


class DicomMisuseDetector:
    """PACS misuse: wildcard patient queries (enumeration) and C-MOVE to destinations never seen.

    A caller that already sent wildcard queries during the learning period (a backup or archive job
    querying by date with universal patient matching) is not flagged for them again; its retrievals to
    new destinations still are.
    """

    name = "dicom-misuse"
    version = "1.0"

    def __init__(self, *, window_minutes: int = 60, min_moves: int = 3) -> None:
        self.window = window_minutes
        self.min_moves = min_moves
        self._destinations: set[str] = set()
        self._callers: set[str] = set()
        self._wildcard_callers: set[str] = set()  # scheduled jobs (backup, archive sync) that query this way
        self._open: dict[tuple[str, datetime], list[tuple[ClinicalMessage, str]]] = defaultdict(list)

    def fit(self, events: Iterable[Event]) -> None:
        for e in events:
            if isinstance(e, ClinicalMessage) and e.protocol == "dicom" and e.message_type != "FILE":
                if e.sender:
                    self._callers.add(e.sender)
                    if e.message_type == "C-FIND" and self._wildcard(e):
                        self._wildcard_callers.add(e.sender)
                if e.message_type in ("C-MOVE", "C-GET") and e.fields.get("move_destination"):
                    self._destinations.add(str(e.fields["move_destination"]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.name,
            "version": self.version,
            "destinations": sorted(self._destinations),
            "callers": sorted(self._callers),
            "wildcard_callers": sorted(self._wildcard_callers),
        }

    def load_dict(self, data: Mapping[str, Any]) -> None:
        _check(self.name, data)
        self._destinations = set(data["destinations"])
        self._callers = set(data["callers"])
        self._wildcard_callers = set(data["wildcard_callers"])

    @staticmethod
    def _wildcard(m: ClinicalMessage) -> bool:
        for key in ("PatientName", "PatientID"):
            v = m.fields.get(key)
            if isinstance(v, str) and ("*" in v or "?" in v or v.strip() == ""):
                return True
        return False

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        touched: set[tuple[str, datetime]] = set()
        for e in events:
            if not isinstance(e, ClinicalMessage) or e.protocol != "dicom" or e.message_type == "FILE":
                continue  # network operations only: an inspected file has no caller (``scan dicom``)
            why = None
            if e.message_type == "C-FIND" and self._wildcard(e) and e.sender not in self._wildcard_callers:
                why = "wildcard patient query"
            elif e.message_type in ("C-MOVE", "C-GET"):
                dest = str(e.fields.get("move_destination") or "")
                if dest and dest not in self._destinations:
                    why = f"retrieve to unknown destination {dest}"
            elif e.sender and e.sender not in self._callers:
                why = f"unknown calling AE title {e.sender}"
            if why:
                key = (e.sender or e.src_ip or "?", _bucket(e.ts, self.window))
                self._open[key].append((e, why))
                touched.add(key)
        alerts = []
        for key in sorted(touched):
            hits = self._open[key]
            moves = sum(1 for m, _ in hits if m.message_type in ("C-MOVE", "C-GET"))
            finds = sum(1 for m, _ in hits if m.message_type == "C-FIND")
            if moves >= self.min_moves or finds >= 2 or (moves == 0 and finds == 0):
                alerts.append(self._alert(key, hits, moves, finds))
        return alerts

    def _alert(
        self, key: tuple[str, datetime], hits: list[tuple[ClinicalMessage, str]], moves: int, finds: int
    ) -> Alert:
        ae, bucket = key
        reasons = sorted({w for _, w in hits})
        ips = sorted({m.src_ip for m, _ in hits if m.src_ip})
        dests = sorted(
            {str(m.fields.get("move_destination")) for m, _ in hits if m.fields.get("move_destination")}
        )
        entities = [Entity(EntityKind.AE_TITLE, ae, EntityRole.ACTOR)]
        entities += [Entity(EntityKind.IP, ip, EntityRole.ACTOR) for ip in ips]
        entities += [Entity(EntityKind.AE_TITLE, d, EntityRole.TARGET) for d in dests]
        techniques = (("T1119",) if finds else ()) + (("T1213", "T1041") if moves else ())
        return Alert(
            id=stable_id("alert", self.name, ae, bucket.isoformat()),
            ts=min(m.ts for m, _ in hits),
            detector=self.name,
            detector_version=self.version,
            title=f"PACS misuse by AE {ae}: " + ("bulk retrieval" if moves else "patient enumeration"),
            score=min(1.0, (moves + 2 * finds) / 20),
            severity=Severity.HIGH if moves >= 10 else Severity.MEDIUM,
            explanation=f"AE {ae} ({', '.join(ips) or 'unknown address'}) sent {finds} wildcard patient quer"
            f"{'y' if finds == 1 else 'ies'} and {moves} retrieval(s) to destinations never seen "
            "at this site "
            f"within {self.window} min: " + "; ".join(reasons[:4]) + ".",
            evidence=tuple(m.id for m, _ in hits),
            entities=tuple(entities),
            techniques=techniques or ("T1213",),
            tactics=("collection",) + (("exfiltration",) if moves else ()),
            features={"wildcard_queries": float(finds), "unknown_destination_moves": float(moves)},
        )
