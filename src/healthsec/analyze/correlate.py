"""Correlate alerts into incidents by shared entities, time proximity and kill-chain progression."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

from healthsec.model import Alert, Entity, EntityKind, EntityRole, Incident, Severity, stable_id

# Kill-chain order of ATT&CK Enterprise tactics, then ICS tactics that have no Enterprise twin.
TACTIC_ORDER = (
    "reconnaissance",
    "resource-development",
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "inhibit-response-function",
    "impair-process-control",
    "impact",
)
_RANK = {t: i for i, t in enumerate(TACTIC_ORDER)}
# Entity kinds that link two alerts even when both only target them: one patient's record is one story.
JOIN_AS_TARGET = frozenset({EntityKind.PATIENT})


def tactic_rank(tactic: str) -> int:
    """Position of a tactic in the kill chain (unknown tactics sort last)."""
    return _RANK.get(tactic, len(TACTIC_ORDER))


@dataclass
class _Key:
    """Alerts naming one entity, in time order, with the role the entity played in each."""

    times: list[float] = field(default_factory=list)
    items: list[tuple[float, str, EntityRole]] = field(default_factory=list)


class StreamingCorrelator:
    """Grows incidents as alerts arrive; the result does not depend on arrival order.

    Two alerts are linked when they name the same entity — unless it is only the *target* of both (two
    attackers hitting the same EHR server are two stories) — and lie within ``window`` of each other.
    A patient is the exception: alerts about one patient's data (its pseudonym, the same from HL7, FHIR,
    DICOM and telemetry) are one story even when the patient is only their target.
    Incidents are the connected components of that graph (single linkage), so an attack that moves from
    a phished workstation to the hosts it infects stays one incident. Addresses are folded onto the
    inventory's host names first, so a rule hit on ``ws-017`` and a flow from its IP meet.
    """

    def __init__(
        self, hosts: Mapping[str, str] | None = None, *, window: timedelta = timedelta(hours=3)
    ) -> None:
        self.hosts = dict(hosts or {})
        self.window = window.total_seconds()
        self._alerts: dict[str, Alert] = {}
        self._parent: dict[str, str] = {}
        self._members: dict[str, list[str]] = {}
        self._alert_keys: dict[str, tuple[str, ...]] = {}
        self._keys: dict[str, _Key] = defaultdict(_Key)

    # --- union-find ---------------------------------------------------------------------------------
    def _find(self, a: str) -> str:
        root = a
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[a] != root:
            self._parent[a], a = root, self._parent[a]
        return root

    def _union(self, a: str, b: str) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            first, second = sorted((ra, rb), key=self._order)
            self._parent[second] = first
            self._members[first].extend(self._members.pop(second))

    def _order(self, alert_id: str) -> tuple[float, str]:
        return (self._alerts[alert_id].ts.timestamp(), alert_id)

    def canonical(self, e: Entity) -> str:
        if e.kind is EntityKind.IP and e.value in self.hosts:
            return f"host:{self.hosts[e.value]}"
        if e.kind is EntityKind.HOST:
            return f"host:{e.value.lower()}"
        return e.key

    # --- streaming API -------------------------------------------------------------------------------
    def add(self, alerts: Iterable[Alert]) -> list[Incident]:
        """Add alerts (a re-sent alert id replaces the old one); return the incidents that changed."""
        roots = {self._find(i) for i in self._ingest(alerts)}
        return self._sorted([self._build(r) for r in roots])

    def _ingest(self, alerts: Iterable[Alert]) -> set[str]:
        touched: set[str] = set()
        for a in alerts:
            if a.id in self._alerts:
                self._alerts[a.id] = a  # grown evidence; its links were made on first sight
                touched.add(a.id)
                continue
            self._alerts[a.id] = a
            self._parent[a.id] = a.id
            self._members[a.id] = [a.id]
            touched.add(a.id)
            t = a.ts.timestamp()
            roles: dict[str, EntityRole] = {}
            for e in a.entities:
                k = self.canonical(e)
                role = EntityRole.ACTOR if e.kind in JOIN_AS_TARGET else e.role
                roles[k] = EntityRole.ACTOR if EntityRole.ACTOR in (roles.get(k), role) else role
            self._alert_keys[a.id] = tuple(roles)
            for k, role in roles.items():
                self._link(self._keys[k], t, a.id, role)
        return touched

    def _link(self, key: _Key, t: float, alert_id: str, role: EntityRole) -> None:
        pos = bisect.bisect(key.times, t)
        key.times.insert(pos, t)
        key.items.insert(pos, (t, alert_id, role))
        # Invariant per key: actors within the window of each other are chained, and every target is
        # joined to the nearest actor on each side within the window. A new target therefore joins the
        # nearest actor each side; a new actor joins every target up to and including the nearest actor
        # each side (targets beyond that actor are already joined to it). That yields the connected
        # components of "share the key, within the window, not both targets" whatever the arrival order.
        for step in (-1, 1):
            j = pos + step
            while 0 <= j < len(key.items):
                tj, other, orole = key.items[j]
                if abs(tj - t) > self.window:
                    break
                if orole is EntityRole.ACTOR:
                    self._union(alert_id, other)
                    break
                if role is EntityRole.ACTOR:
                    self._union(alert_id, other)
                j += step

    def _build(self, root: str) -> Incident:
        ids = self._members[root]
        # How strongly each alert belongs: how many others in the incident name one of its entities.
        # Counted from the final group, so it does not depend on arrival order either.
        per_key: dict[str, int] = defaultdict(int)
        for i in ids:
            for k in self._alert_keys[i]:
                per_key[k] += 1
        links = {i: sum(per_key[k] - 1 for k in self._alert_keys[i]) for i in ids}
        return build_incident([self._alerts[i] for i in ids], links)

    @staticmethod
    def _sorted(incidents: list[Incident]) -> list[Incident]:
        return sorted(incidents, key=lambda i: (-int(i.severity), -i.score, i.first_seen, i.id))

    def incidents(self) -> list[Incident]:
        """Every incident so far, most severe first."""
        return self._sorted([self._build(r) for r in self._members])


def correlate(
    alerts: Sequence[Alert], hosts: Mapping[str, str] | None = None, *, window: timedelta = timedelta(hours=3)
) -> list[Incident]:
    """Batch correlation (the same result as streaming the alerts in any order)."""
    c = StreamingCorrelator(hosts, window=window)
    c._ingest(sorted(alerts, key=lambda a: (a.ts, a.id)))
    return c.incidents()


def build_incident(alerts: Sequence[Alert], links: Mapping[str, int] | None = None) -> Incident:
    """Summarise a group of alerts: timeline, kill-chain tactics, techniques, entities, severity."""
    alerts = sorted(alerts, key=lambda a: (a.ts, a.id))
    links = links or {}
    tactics = sorted({t for a in alerts for t in a.tactics}, key=lambda t: (tactic_rank(t), t))
    techniques = tuple(sorted({t for a in alerts for t in a.techniques}))
    seen: dict[tuple[str, str], Entity] = {}
    for a in alerts:
        for e in a.entities:
            seen.setdefault((e.key, e.role.value), e)
    entities = tuple(sorted(seen.values(), key=lambda e: (e.role.value, e.kind.value, e.value)))
    severity = max(a.severity for a in alerts)
    if len(tactics) >= 3 and severity < Severity.CRITICAL:
        severity = Severity(severity + 1)  # a multi-stage kill chain is worse than its worst step
    score = min(1.0, max(a.score for a in alerts) * (1 + 0.1 * (len(tactics) - 1 if tactics else 0)))
    n = len(alerts)
    membership = {
        a.id: 1.0 if n == 1 else round(0.5 + 0.5 * min(1.0, links.get(a.id, 0) / 3), 3) for a in alerts
    }
    lead = max(alerts, key=lambda a: (int(a.severity), a.score, -a.ts.timestamp()))
    span = alerts[-1].ts - alerts[0].ts
    actors = sorted({e.value for e in entities if e.role is EntityRole.ACTOR})
    title = lead.title if n == 1 else f"{lead.title} (+{n - 1} related alert{'s' if n > 2 else ''})"
    chain = " → ".join(tactics) if tactics else "no ATT&CK tactic named"
    summary = (
        f"{n} alert(s) from {len({a.detector for a in alerts})} detector(s) over "
        f"{_duration(span)}; kill chain: {chain}; actors: {', '.join(actors[:6]) or 'unknown'}"
        f"{' …' if len(actors) > 6 else ''}."
    )
    return Incident(
        id=stable_id("inc", alerts[0].id),
        title=title,
        first_seen=alerts[0].ts,
        last_seen=alerts[-1].ts,
        severity=severity,
        score=round(score, 4),
        alert_ids=tuple(a.id for a in alerts),
        entities=entities,
        techniques=techniques,
        tactics=tuple(tactics),
        membership=membership,
        summary=summary,
    )


def merge(incidents: Sequence[Incident], alerts: Mapping[str, Alert]) -> Incident:
    """An analyst's merge: one incident holding every alert of the given ones (none is lost)."""
    ids = {i for inc in incidents for i in inc.alert_ids}
    missing = ids - alerts.keys()
    if missing:
        raise KeyError(f"alerts not found: {sorted(missing)[:5]}")
    return build_incident([alerts[i] for i in ids])


def split(
    incident: Incident, alert_ids: Iterable[str], alerts: Mapping[str, Alert]
) -> tuple[Incident, Incident]:
    """An analyst's split: the named alerts become a new incident, the rest stay; none is lost."""
    move = set(alert_ids)
    unknown = move - set(incident.alert_ids)
    if unknown:
        raise ValueError(f"alerts not in incident {incident.id}: {sorted(unknown)[:5]}")
    rest = [alerts[i] for i in incident.alert_ids if i not in move]
    if not move or not rest:
        raise ValueError("a split needs alerts on both sides")
    kept = replace(build_incident(rest), status=incident.status)
    return kept, build_incident([alerts[i] for i in move])


def _duration(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
