"""EHR / FHIR insider-threat analytics: no care relationship, VIP and same-surname snooping, off-hours bulk
reads, mass $export and access-rate bursts against the user's own and their role's baseline."""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from healthsec.model import Alert, Entity, EntityKind, EntityRole, Event, RecordAccess, Severity, stable_id
from healthsec.model.care import CareContext
from healthsec.privacy.pseudonymise import patient_pseudonym

#: ATT&CK Enterprise techniques each rule supports, with their tactics.
TECHNIQUES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "no-care-relationship": (("T1213",), ("collection",)),
    "vip-snooping": (("T1213",), ("collection",)),
    "same-surname": (("T1213",), ("collection",)),
    "off-hours-bulk": (("T1213", "T1078"), ("collection", "initial-access")),
    "mass-export": (("T1213", "T1119", "T1567"), ("collection", "exfiltration")),
    "rate-burst": (("T1119", "T1213"), ("collection",)),
}

_VOLUME_ACTIONS = frozenset({"read", "search", "export", "print"})
_MAX_EVIDENCE = 500
_MAX_PATIENT_ENTITIES = 20


@dataclass(frozen=True, slots=True)
class _Stats:
    """Hourly record counts of one user or one role over the baseline (active hours only)."""

    n: int
    mean: float
    std: float
    p95: float

    @classmethod
    def of(cls, counts: Sequence[int]) -> _Stats:
        ordered = sorted(counts)
        p95 = float(ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)])
        std = statistics.pstdev(ordered) if len(ordered) > 1 else 0.0
        return cls(len(ordered), statistics.fmean(ordered), std, p95)

    def z(self, value: float) -> float:
        # A floor on the spread: a user who always reads exactly 4 records an hour is not 'infinitely'
        # anomalous at 5; one record or 10 % of the mean, whichever is larger.
        return (value - self.mean) / max(self.std, 1.0, 0.1 * self.mean)


@dataclass(slots=True)
class AccessDetector:
    """Alerting detector over :class:`RecordAccess` events; ``fit`` learns per-user and per-role baselines.

    Users missing from the :class:`CareContext` are not judged for care relationships (nothing to judge
    against) but are judged on rates, hours and exports; VIP records are judged for everyone.
    """

    context: CareContext
    mask_key: bytes
    local_authority: str | None = None
    local_tz: tzinfo = UTC
    window: timedelta = timedelta(hours=1)
    work_hours: tuple[int, int] = (7, 19)
    off_hours_min_records: int = 20
    burst_min_records: int = 30
    burst_z: float = 4.0
    burst_no_baseline_records: int = 150
    export_bulk_records: int = 100
    min_history_windows: int = 3
    name: str = "clinical.access"
    version: str = "1.0"
    _user_stats: dict[str, _Stats] = field(default_factory=dict, init=False)
    _role_stats: dict[str, _Stats] = field(default_factory=dict, init=False)
    _user_hours: dict[str, frozenset[int]] = field(default_factory=dict, init=False)

    # ---------------------------------------------------------------- baseline
    def fit(self, events: Iterable[Event]) -> None:
        """Learn hourly volumes per user and per role, and each user's usual local hours (benign events)."""
        per_user: dict[str, Counter[datetime]] = defaultdict(Counter)
        roles: dict[str, str] = {}
        hours: dict[str, set[int]] = defaultdict(set)
        for ev in events:
            if not isinstance(ev, RecordAccess) or ev.action not in _VOLUME_ACTIONS:
                continue
            user = self.context.canonical_user(ev.user)
            per_user[user][self._bucket(ev.ts)] += ev.records
            hours[user].add(ev.ts.astimezone(self.local_tz).hour)
            role = self.context.role_of(user, ev.role)
            if role:
                roles[user] = role
        by_role: dict[str, list[int]] = defaultdict(list)
        for user, counts in per_user.items():
            self._user_stats[user] = _Stats.of(list(counts.values()))
            if user in roles:
                by_role[roles[user]].extend(counts.values())
        self._role_stats = {role: _Stats.of(c) for role, c in by_role.items()}
        self._user_hours = {u: frozenset(h) for u, h in hours.items()}

    def to_dict(self) -> dict[str, Any]:
        """The learnt per-user and per-role hourly volumes and usual hours, as JSON."""
        return {
            "detector": self.name,
            "version": self.version,
            "users": {u: list(dataclasses.astuple(st)) for u, st in sorted(self._user_stats.items())},
            "roles": {r: list(dataclasses.astuple(st)) for r, st in sorted(self._role_stats.items())},
            "hours": {u: sorted(h) for u, h in sorted(self._user_hours.items())},
        }

    def load_dict(self, data: Mapping[str, Any]) -> None:
        if data.get("detector") != self.name:
            raise ValueError(f"baseline is for detector {data.get('detector')!r}, not {self.name!r}")

        def stats(v: Sequence[float]) -> _Stats:
            n, mean, std, p95 = v
            return _Stats(int(n), float(mean), float(std), float(p95))

        self._user_stats = {str(u): stats(v) for u, v in data["users"].items()}
        self._role_stats = {str(r): stats(v) for r, v in data["roles"].items()}
        self._user_hours = {str(u): frozenset(int(x) for x in h) for u, h in data["hours"].items()}

    # ---------------------------------------------------------------- detection
    def detect(self, events: Sequence[Event]) -> list[Alert]:
        accesses = sorted((e for e in events if isinstance(e, RecordAccess)), key=lambda e: (e.ts, e.id))
        alerts: list[Alert] = []
        alerts += self._relationships(accesses)
        alerts += self._exports(accesses)
        alerts += self._volumes(accesses)
        return alerts

    def _bucket(self, ts: datetime) -> datetime:
        seconds = int(self.window.total_seconds())
        epoch = int(ts.timestamp())
        return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)

    def _mask(self, patient_id: str) -> str:
        return patient_pseudonym(self.mask_key, patient_id, local_authority=self.local_authority)

    def _alert(
        self,
        rule: str,
        key: str,
        group: Sequence[RecordAccess],
        *,
        title: str,
        explanation: str,
        score: float,
        severity: Severity,
        features: dict[str, float | str | None],
    ) -> Alert:
        user = self.context.canonical_user(group[0].user)
        patients = sorted({e.patient_id for e in group if e.patient_id})
        entities = [Entity(EntityKind.USER, user, EntityRole.ACTOR)]
        entities += [
            Entity(EntityKind.HOST, ws, EntityRole.ACTOR)
            for ws in sorted({e.workstation for e in group if e.workstation})
        ]
        entities += [
            Entity(EntityKind.PATIENT, self._mask(p), EntityRole.TARGET)
            for p in patients[:_MAX_PATIENT_ENTITIES]
        ]
        techniques, tactics = TECHNIQUES[rule]
        return Alert(
            id=stable_id("alert", self.name, rule, user, key),
            ts=group[-1].ts,
            detector=self.name,
            detector_version=self.version,
            title=title,
            score=round(min(1.0, max(0.0, score)), 4),
            severity=severity,
            explanation=explanation,
            evidence=tuple(e.id for e in group[:_MAX_EVIDENCE]),
            entities=tuple(entities),
            techniques=techniques,
            tactics=tactics,
            features={"rule": rule, **features},
        )

    def _relationships(self, accesses: Sequence[RecordAccess]) -> list[Alert]:
        """One alert per user, local day and kind: no relationship, VIP, same surname."""
        groups: dict[tuple[str, str, date], list[RecordAccess]] = defaultdict(list)
        ctx = self.context
        for ev in accesses:
            pid = ev.patient_id
            user = ctx.canonical_user(ev.user)
            if pid is None or user in ctx.service_accounts or ctx.has_relationship(user, pid):
                continue
            day = ev.ts.astimezone(self.local_tz).date()
            if pid in ctx.vip_patients:
                groups[("vip-snooping", user, day)].append(ev)
            elif ctx.same_surname(user, pid):
                groups[("same-surname", user, day)].append(ev)
            elif ctx.knows_user(user):
                groups[("no-care-relationship", user, day)].append(ev)
        alerts = []
        for (rule, user, day), group in groups.items():
            n = len({e.patient_id for e in group})
            role = ctx.role_of(user, group[0].role) or "unknown role"
            if rule == "vip-snooping":
                title = "VIP patient record opened without a care relationship"
                sev, score = Severity.CRITICAL, 0.95
                why = f"{user} ({role}) opened {len(group)} record(s) of {n} VIP patient(s) on {day}"
            elif rule == "same-surname":
                title = "Record of a patient with the user's own surname opened without a care relationship"
                sev, score = Severity.HIGH, 0.85
                why = f"{user} ({role}) opened {len(group)} record(s) of {n} same-surname patient(s) on {day}"
            else:
                title = f"Records of {n} patient(s) opened with no shared encounter or care team"
                sev = Severity.HIGH if n >= 5 else Severity.MEDIUM
                score = 1.0 - 1.0 / (1.0 + n)
                why = f"{user} ({role}) opened {len(group)} record(s) of {n} patient(s) on {day}"
            why += " with no shared encounter or care team in the directory; patients: " + ", ".join(
                sorted({self._mask(e.patient_id) for e in group if e.patient_id})[:5]
            )
            alerts.append(
                self._alert(
                    rule,
                    day.isoformat(),
                    group,
                    title=title,
                    explanation=why,
                    score=score,
                    severity=sev,
                    features={"patients": float(n), "accesses": float(len(group)), "role": role},
                )
            )
        return alerts

    def _exports(self, accesses: Sequence[RecordAccess]) -> list[Alert]:
        alerts = []
        for ev in accesses:
            if ev.action != "export":
                continue
            user = self.context.canonical_user(ev.user)
            system_level = ev.patient_id is None
            if user in self.context.service_accounts and ev.records < self.export_bulk_records:
                continue
            bulk = ev.records >= self.export_bulk_records or system_level
            scope = "system/group-level" if system_level else "single-patient"
            why = (
                f"{user} ran a {scope} $export of {ev.records} record(s)"
                f"{' of ' + ev.resource_type if ev.resource_type else ''}"
                f"{' from ' + ev.workstation if ev.workstation else ''}; "
                f"bulk threshold {self.export_bulk_records}"
            )
            alerts.append(
                self._alert(
                    "mass-export",
                    ev.id,
                    [ev],
                    title="Mass FHIR $export" if bulk else "FHIR $export by an interactive user",
                    explanation=why,
                    score=0.9 if bulk else 0.6,
                    severity=Severity.CRITICAL if bulk else Severity.MEDIUM,
                    features={"records": float(ev.records), "system_level": "yes" if system_level else "no"},
                )
            )
        return alerts

    def _volumes(self, accesses: Sequence[RecordAccess]) -> list[Alert]:
        """Per user and window: off-hours bulk reads, and rate bursts against user and role baselines."""
        windows: dict[tuple[str, datetime], list[RecordAccess]] = defaultdict(list)
        for ev in accesses:
            if ev.action in _VOLUME_ACTIONS:
                windows[(self.context.canonical_user(ev.user), self._bucket(ev.ts))].append(ev)
        alerts = []
        for (user, start), group in windows.items():
            volume = sum(e.records for e in group)
            local_hour = start.astimezone(self.local_tz).hour
            usual = self._user_hours.get(user)
            lo, hi = self.work_hours
            off_hours = local_hour not in usual if usual else not lo <= local_hour < hi
            key = start.isoformat()
            if off_hours and volume >= self.off_hours_min_records:
                basis = "this user's usual hours" if usual else f"working hours {lo:02d}-{hi:02d}"
                alerts.append(
                    self._alert(
                        "off-hours-bulk",
                        key,
                        group,
                        title=f"Off-hours bulk read: {volume} records at {local_hour:02d}h",
                        explanation=(
                            f"{user} read {volume} record(s) of {len({e.patient_id for e in group})} "
                            f"patient(s) in the hour from {start.astimezone(self.local_tz):%Y-%m-%d %H:%M}, "
                            f"outside {basis}; "
                            f"threshold {self.off_hours_min_records}"
                        ),
                        score=min(1.0, volume / (4.0 * self.off_hours_min_records)),
                        severity=Severity.HIGH,
                        features={"records": float(volume), "local_hour": float(local_hour)},
                    )
                )
            burst = self._burst(user, key, group, volume)
            if burst is not None:
                alerts.append(burst)
        return alerts

    def _burst(self, user: str, key: str, group: Sequence[RecordAccess], volume: int) -> Alert | None:
        if volume < self.burst_min_records:
            return None
        ustats = self._user_stats.get(user)
        role = self.context.role_of(user, group[0].role)
        rstats = self._role_stats.get(role) if role else None
        zs: dict[str, float] = {}
        if ustats is not None and ustats.n >= self.min_history_windows:
            zs["user"] = ustats.z(volume)
        if rstats is not None and rstats.n >= self.min_history_windows:
            zs["role"] = rstats.z(volume)
        # The user's own history decides when it is long enough; the role's baseline stands in for new users
        # and sets the severity: unusual for the user AND for the role is HIGH, for the user only MEDIUM.
        primary = zs.get("user", zs.get("role"))
        if primary is None:
            if volume < self.burst_no_baseline_records:
                return None
        elif primary < self.burst_z:
            return None
        beyond_all = all(z >= self.burst_z for z in zs.values())
        parts = [f"{user} accessed {volume} record(s) within {self.window}"]
        if ustats is not None:
            parts.append(
                f"own baseline {ustats.mean:.1f}/h (p95 {ustats.p95:.0f}, z {zs.get('user', 0.0):.1f})"
            )
        if rstats is not None:
            parts.append(f"role {role} baseline {rstats.mean:.1f}/h (z {zs.get('role', 0.0):.1f})")
        if not zs:
            parts.append(f"no baseline; absolute threshold {self.burst_no_baseline_records}")
        if zs and not beyond_all:
            parts.append("unusual for this user though within the role's range")
        top = (
            primary if primary is not None else float(volume) / self.burst_no_baseline_records * self.burst_z
        )
        features: dict[str, float | str | None] = {
            "records": float(volume),
            "z_user": zs.get("user"),
            "z_role": zs.get("role"),
            "role": role,
        }
        return self._alert(
            "rate-burst",
            key,
            group,
            title=f"Access-rate burst: {volume} records in {self.window}",
            explanation="; ".join(parts),
            score=1.0 - 1.0 / (1.0 + top / self.burst_z),
            severity=Severity.HIGH if beyond_all and top >= 2 * self.burst_z else Severity.MEDIUM,
            features=features,
        )
