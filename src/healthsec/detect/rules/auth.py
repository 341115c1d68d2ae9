"""Authentication attacks from Windows logon events: brute force and password spraying, and their success."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from healthsec.detect.base import KnownPairsBaseline
from healthsec.model import Alert, Entity, EntityKind, EntityRole, Event, LogRecord, Severity, stable_id

FAILED, SUCCESS = 4625, 4624


def _source(rec: LogRecord) -> str | None:
    value = rec.fields.get("IpAddress")
    return str(value) if value not in (None, "", "-", "::1", "127.0.0.1") else None


class BruteForceDetector:
    """Counts failed logons per source address in a sliding window; the threshold adapts to the site.

    The threshold is the larger of ``min_failures`` and three times the most failures any benign source
    produced in one window during training. A later successful logon from the same source within
    ``success_window`` raises the alert to critical: the attacker may now hold valid credentials.
    """

    name = "auth-bruteforce"
    version = "1.0"

    def __init__(
        self, *, window_minutes: int = 10, min_failures: int = 20, success_window_minutes: int = 60
    ) -> None:
        self.window = timedelta(minutes=window_minutes)
        self.min_failures = min_failures
        self.success_window = timedelta(minutes=success_window_minutes)
        self.threshold = min_failures
        self._failures: dict[str, list[LogRecord]] = defaultdict(list)
        self._open: dict[str, tuple[str, datetime]] = {}

    def fit(self, events: Iterable[Event]) -> None:
        per: dict[str, list[datetime]] = defaultdict(list)
        for e in events:
            if isinstance(e, LogRecord) and e.event_id == FAILED and (src := _source(e)):
                per[src].append(e.ts)
        worst = 0
        for times in per.values():
            times.sort()
            lo = 0
            for hi, t in enumerate(times):
                while t - times[lo] > self.window:
                    lo += 1
                worst = max(worst, hi - lo + 1)
        self.threshold = max(self.min_failures, 3 * worst)

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        alerts: dict[str, Alert] = {}
        for e in events:
            if not isinstance(e, LogRecord) or e.event_id not in (FAILED, SUCCESS):
                continue
            src = _source(e)
            if src is None:
                continue
            if e.event_id == FAILED:
                q = self._failures[src]
                q.append(e)
                while q and e.ts - q[0].ts > self.window:
                    q.pop(0)
                if len(q) >= self.threshold and src not in self._open:
                    self._open[src] = (stable_id("alert", self.name, src, q[0].id), q[0].ts)
                if src in self._open:
                    alert_id, first = self._open[src]
                    prev = alerts.get(alert_id)
                    evidence = (*prev.evidence, e.id) if prev else tuple(r.id for r in q)
                    alerts[alert_id] = self._alert(
                        alert_id, first, src, evidence, [e], success=None, prev=prev
                    )
            elif src in self._open:
                alert_id, first = self._open[src]
                if e.ts - first <= self.success_window:
                    prev = alerts.get(alert_id)
                    evidence = (*(prev.evidence if prev else ()), e.id)
                    alerts[alert_id] = self._alert(alert_id, first, src, evidence, [e], success=e, prev=prev)
        return list(alerts.values())

    def _alert(
        self,
        alert_id: str,
        first: datetime,
        src: str,
        evidence: tuple[str, ...],
        recs: list[LogRecord],
        *,
        success: LogRecord | None,
        prev: Alert | None,
    ) -> Alert:
        host = recs[-1].host or "?"
        known = prev.features.get("users") if prev else None
        users = set(known.split(",")) if isinstance(known, str) and known else set()
        users |= {str(r.fields.get("TargetUserName")) for r in recs if r.fields.get("TargetUserName")}
        users.discard("")
        won = success is not None or bool(prev and prev.severity == Severity.CRITICAL)
        failures = len(evidence) - (1 if won else 0)
        text = (
            f"{failures} failed logons from {src} against {host} for {len(users)} account(s) within "
            f"{int(self.window.total_seconds() // 60)} min (site threshold {self.threshold})"
        )
        if won:
            who = (
                success.fields.get("TargetUserName")
                if success
                else prev.features.get("compromised")
                if prev
                else ""
            )
            text += f", followed by a successful logon as {who}: the credentials are probably compromised"
        spray = len(users) > 5
        entities = [
            Entity(EntityKind.IP, src, EntityRole.ACTOR),
            Entity(EntityKind.HOST, host, EntityRole.TARGET),
        ]
        feats: dict[str, float | str | None] = {"failures": float(failures), "users": ",".join(sorted(users))}
        if won:
            if success is not None:
                compromised: object = success.fields.get("TargetUserName")
            else:
                compromised = prev.features.get("compromised") if prev else None
            feats["compromised"] = str(compromised)
            entities.append(Entity(EntityKind.USER, str(compromised), EntityRole.TARGET))
        return Alert(
            id=alert_id,
            ts=first,
            detector=self.name,
            detector_version=self.version,
            title=("Password spraying" if spray else "Brute-force logon")
            + f" against {host} from {src}"
            + (" succeeded" if won else ""),
            score=min(1.0, failures / (4 * self.threshold)) if not won else 1.0,
            severity=Severity.CRITICAL if won else Severity.HIGH,
            explanation=text + ".",
            evidence=evidence,
            entities=tuple(entities),
            techniques=("T1110.003" if spray else "T1110.001",) + (("T1078",) if won else ()),
            tactics=("credential-access",) + (("initial-access",) if won else ()),
            features=feats,
        )


class LogonNoveltyDetector(KnownPairsBaseline):
    """Network logons by an account from a source it never used, spreading to several hosts.

    Learns (account, source address) pairs of successful network logons (4624, logon type 3/10) from
    the baseline; an account reaching ``min_hosts`` hosts from a new source within ``window_minutes`` is
    lateral movement with valid accounts (ATT&CK T1021, T1078).
    """

    name = "auth-lateral-logon"
    version = "1.0"

    def __init__(self, *, window_minutes: int = 120, min_hosts: int = 2) -> None:
        self.window = timedelta(minutes=window_minutes)
        self.min_hosts = min_hosts
        self._known: set[tuple[str, str]] = set()
        self._recent: dict[tuple[str, str], list[LogRecord]] = defaultdict(list)

    @staticmethod
    def _pair(e: Event) -> tuple[str, str] | None:
        if not isinstance(e, LogRecord) or e.event_id != SUCCESS:
            return None
        if str(e.fields.get("LogonType")) not in ("3", "10"):
            return None
        src, user = _source(e), e.fields.get("TargetUserName")
        return (str(user).lower(), src) if src and user else None

    def fit(self, events: Iterable[Event]) -> None:
        self._known = {p for e in events if (p := self._pair(e))}

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        touched: set[tuple[str, str]] = set()
        for e in events:
            pair = self._pair(e)
            if pair is None or pair in self._known:
                continue
            assert isinstance(e, LogRecord)
            q = self._recent[pair]
            q.append(e)
            while q and e.ts - q[0].ts > self.window:
                q.pop(0)
            if len({r.host for r in q}) >= self.min_hosts:
                touched.add(pair)
        return [self._alert(p, self._recent[p]) for p in sorted(touched)]

    def _alert(self, pair: tuple[str, str], recs: list[LogRecord]) -> Alert:
        user, src = pair
        hosts = sorted({r.host or "?" for r in recs})
        entities = [
            Entity(EntityKind.IP, src, EntityRole.ACTOR),
            Entity(EntityKind.USER, user, EntityRole.ACTOR),
        ]
        entities += [Entity(EntityKind.HOST, h, EntityRole.TARGET) for h in hosts]
        return Alert(
            id=stable_id("alert", self.name, user, src, recs[0].id),
            ts=recs[0].ts,
            detector=self.name,
            detector_version=self.version,
            title=f"Account {user} logging on to {len(hosts)} hosts from a new source {src}",
            score=min(1.0, len(hosts) / 5),
            severity=Severity.HIGH,
            explanation=(
                f"{len(recs)} network logons as {user} from {src} reached {', '.join(hosts[:8])} within "
                f"{int(self.window.total_seconds() // 60)} min; this account never logged on from {src} "
                "in the baseline."
            ),
            evidence=tuple(r.id for r in recs),
            entities=tuple(entities),
            techniques=("T1021.002", "T1078"),
            tactics=("lateral-movement",),
            features={"hosts": float(len(hosts))},
        )
