"""Incident use cases: list and filter, show with alerts and risk, status, assign, comment, merge, split."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from healthsec.model import Alert, Incident, IncidentStatus, Severity
from healthsec.model.triage import ActivityKind, IncidentActivity
from healthsec.services.common import Invalid, NotFound, Page, Refused, check_paging
from healthsec.services.risk import incident_risk_model, risk_model

if TYPE_CHECKING:
    from healthsec.analyze.attack import AttackKB
    from healthsec.analyze.risk import IncidentRisk
    from healthsec.store import Store
    from healthsec.store.triage import ActivityRepository

MAX_TEXT = 4000
Order = Literal["severity", "risk"]


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentFilter:
    """Which incidents; ``assignee`` "-" means unassigned ones."""

    status: IncidentStatus | None = None
    min_severity: Severity | None = None
    assignee: str | None = None
    open_only: bool = False  # open, investigating or contained (not closed, not a false positive)
    text: str | None = None  # in the id or title, case-insensitive


@dataclass(frozen=True, slots=True)
class IncidentRow:
    incident: Incident
    assignee: str | None
    risk: IncidentRisk | None  # None unless asked for (it reads every asset and alert)


@dataclass(frozen=True, slots=True)
class TechniqueRef:
    id: str
    name: str | None  # None: not in the pinned ATT&CK copy
    tactics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    """An incident with its alerts (time order), risk, ATT&CK context and the analysts' activity."""

    incident: Incident
    alerts: list[Alert]
    risk: IncidentRisk
    techniques: list[TechniqueRef]
    mitigations: list[tuple[str, str, int]]  # (id, name, techniques covered), most covering first
    healthcare_groups: list[tuple[str, int]]
    assignee: str | None
    activity: list[IncidentActivity]


@dataclass(frozen=True, slots=True)
class CorrelationSummary:
    alerts: int
    incidents: int
    alerts_in_incidents: int


OPEN_STATUSES = (
    IncidentStatus.OPEN.value,
    IncidentStatus.INVESTIGATING.value,
    IncidentStatus.CONTAINED.value,
)


def _open_values(flt: IncidentFilter) -> list[str]:
    return list(OPEN_STATUSES) if flt.open_only else []


def activity(store: Store) -> ActivityRepository:
    from healthsec.store.triage import activity as repository

    return repository(store)


def _all(store: Store) -> list[Incident]:
    return store.incidents.list(limit=max(store.incidents.count(), 1))


def get_incident(store: Store, incident_id: str) -> Incident:
    inc = store.incidents.get(incident_id)
    if inc is None:
        raise NotFound("incident", incident_id)
    return inc


def list_incidents(
    store: Store,
    flt: IncidentFilter | None = None,
    *,
    limit: int = 100,
    offset: int = 0,
    order: Order = "severity",
    with_risk: bool = False,
    with_total: bool = False,
) -> Page[IncidentRow]:
    """Incidents, most severe first (``order="risk"``: what could hurt patients most first), paged."""
    flt = flt or IncidentFilter()
    check_paging(limit, offset)
    if order not in ("severity", "risk"):
        raise Invalid(f"order must be severity or risk, not {order!r}")
    owners = activity(store).assignees()
    if order == "severity" and flt.assignee is None:
        # the database filters, orders and pages (the same order as the repository's list)
        from healthsec.store.aggregates import Aggregates

        found, total = Aggregates(store.engine, store.org).incidents_page(
            statuses=[flt.status.value] if flt.status is not None else _open_values(flt),
            text=flt.text,
            min_severity=None if flt.min_severity is None else int(flt.min_severity),
            limit=limit,
            offset=offset,
        )
        model = risk_model(store) if with_risk else None
        page_rows = [
            IncidentRow(i, owners.get(i.id), model.incident_risk(i) if model else None) for i in found
        ]
        return Page(page_rows, limit, offset, total if with_total else None)
    items = [
        i
        for i in _all(store)
        if (flt.status is None or i.status == flt.status)
        and (not flt.open_only or i.status.value in OPEN_STATUSES)
        and (not flt.text or flt.text.lower() in f"{i.id} {i.title}".lower())
        and (flt.min_severity is None or i.severity >= flt.min_severity)
        and (
            flt.assignee is None
            or (owners.get(i.id) is None if flt.assignee == "-" else owners.get(i.id) == flt.assignee)
        )
    ]
    model = risk_model(store) if with_risk or order == "risk" else None
    rows = [IncidentRow(i, owners.get(i.id), model.incident_risk(i) if model else None) for i in items]
    if order == "risk":
        rows.sort(key=lambda r: (-r.risk.score if r.risk else 0.0, -int(r.incident.severity), r.incident.id))
    return Page(rows[offset : offset + limit], limit, offset, len(rows) if with_total else None)


def incident_detail(store: Store, incident_id: str, kb: AttackKB | None = None) -> IncidentDetail:
    """One incident with everything an analyst reads: timeline, risk, techniques, mitigations, activity."""
    inc = get_incident(store, incident_id)
    alerts = sorted(_alerts_of(store, [inc]).values(), key=lambda a: (a.ts, a.id))
    risk = incident_risk_model(store).incident_risk(inc)
    techniques: list[TechniqueRef] = []
    names: dict[str, str] = {}
    covers: Counter[str] = Counter()
    for tid in inc.techniques:
        tech = kb.technique(tid) if kb else None
        techniques.append(TechniqueRef(tid, tech.name if tech else None, tuple(tech.tactics) if tech else ()))
        if kb and tech:
            for m in kb.mitigations_for(tech.id):
                names[m.id] = m.name
                covers[m.id] += 1
    # mitigations that cover the most of the incident's techniques first
    mitigations = [(m, names[m], covers[m]) for m in sorted(covers, key=lambda m: (-covers[m], m))]
    groups = [tuple(g) for g in kb.healthcare_groups_matching(inc.techniques)] if kb else []
    history = activity(store).for_incident(incident_id)
    owner = next((h.value for h in reversed(history) if h.kind is ActivityKind.ASSIGN), None)
    return IncidentDetail(inc, alerts, risk, techniques, mitigations, groups, owner, history)  # type: ignore[arg-type]


def _text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_TEXT:
        raise Invalid(f"{what} longer than {MAX_TEXT} characters")
    return value


def _note(
    store: Store, incident_id: str, kind: ActivityKind, actor: str, value: str | None
) -> IncidentActivity:
    if not actor.strip():
        raise Invalid("every change needs the name of who made it")
    entry = IncidentActivity(
        incident_id=incident_id, kind=kind, actor=actor, ts=datetime.now(UTC), value=value
    )
    activity(store).add(entry)
    return entry


def set_status(
    store: Store, incident_id: str, status: IncidentStatus | str, *, actor: str, note: str | None = None
) -> Incident:
    """Move an incident to a status (open, investigating, contained, closed, false_positive)."""
    try:
        new = IncidentStatus(status)
    except ValueError:
        choices = ", ".join(s.value for s in IncidentStatus)
        raise Invalid(f"status {status!r} is not one of {choices}") from None
    _text(note, "note")
    get_incident(store, incident_id)
    _note(store, incident_id, ActivityKind.STATUS, actor, new.value)
    store.incidents.set_status(incident_id, new.value)
    store.audit.record(actor, "incident.status", incident_id, status=new.value, note=note)
    return get_incident(store, incident_id)


def assign(store: Store, incident_id: str, assignee: str | None, *, actor: str) -> IncidentActivity:
    """Give an incident to an analyst (None or "" takes it back)."""
    who = (assignee or "").strip() or None
    if who is not None and len(who) > 128:
        raise Invalid("assignee longer than 128 characters")
    get_incident(store, incident_id)
    entry = _note(store, incident_id, ActivityKind.ASSIGN, actor, who)
    store.audit.record(actor, "incident.assign", incident_id, assignee=who)
    return entry


def comment(store: Store, incident_id: str, text: str, *, actor: str) -> IncidentActivity:
    """Add a comment to an incident's history."""
    if not text.strip():
        raise Invalid("an empty comment says nothing")
    _text(text, "comment")
    get_incident(store, incident_id)
    entry = _note(store, incident_id, ActivityKind.COMMENT, actor, text)
    store.audit.record(actor, "incident.comment", incident_id, length=len(text))
    return entry


def _alerts_of(store: Store, incidents: list[Incident]) -> dict[str, Alert]:
    """The stored alerts of these incidents: one query per incident, then one per alert not linked to it."""
    out: dict[str, Alert] = {}
    for inc in incidents:
        linked = {a.id: a for a in store.alerts.list(incident_id=inc.id, limit=max(len(inc.alert_ids), 1))}
        for aid in inc.alert_ids:
            found = linked.get(aid) or store.alerts.get(aid)
            if found is not None:
                out[aid] = found
    return out


def _replace(store: Store, remove: set[str], add: list[Incident], action: str, actor: str) -> None:
    """Swap incidents in one go; every alert of the removed ones is in an added one (checked)."""
    current = _all(store)
    before = {a for i in current if i.id in remove for a in i.alert_ids}
    after = {a for i in add for a in i.alert_ids}
    if before != after:  # the correlator's merge/split guarantee this; refuse to store anything else
        raise Refused(f"{action} would lose alerts {sorted(before - after)[:5]}; nothing changed")
    store.incidents.replace_all([i for i in current if i.id not in remove] + add)
    store.audit.record(actor, f"incidents.{action}", ",".join(sorted(remove)), into=[i.id for i in add])


def merge(store: Store, incident_ids: list[str], *, actor: str) -> Incident:
    """Merge incidents that are one story; the merged incident keeps every alert."""
    from healthsec.analyze.correlate import merge as merge_incidents

    if len(set(incident_ids)) < 2:
        raise Invalid("merge needs at least two different incident ids")
    found = [store.incidents.get(i) for i in incident_ids]
    missing = [i for i, inc in zip(incident_ids, found, strict=True) if inc is None]
    if missing:
        raise NotFound("incident" if len(missing) == 1 else "incidents", ", ".join(missing))
    incidents = [i for i in found if i is not None]
    try:
        merged = merge_incidents(incidents, _alerts_of(store, incidents))
    except KeyError as exc:
        raise Refused(f"cannot merge: {exc.args[0]}") from None
    _replace(store, {i.id for i in incidents}, [merged], "merge", actor)
    return merged


def split(store: Store, incident_id: str, alert_ids: list[str], *, actor: str) -> tuple[Incident, Incident]:
    """Split alerts out of an incident into a new one: (the incident kept, the new one)."""
    from healthsec.analyze.correlate import split as split_incident

    inc = get_incident(store, incident_id)
    try:
        kept, moved = split_incident(inc, alert_ids, _alerts_of(store, [inc]))
    except (ValueError, KeyError) as exc:
        raise Refused(f"cannot split: {exc}") from None
    _replace(store, {inc.id}, [kept, moved], "split", actor)
    return kept, moved


def correlate_stored(
    store: Store, *, window: timedelta = timedelta(hours=3), kb: AttackKB | None = None, actor: str
) -> CorrelationSummary:
    """Re-correlate every stored alert into incidents; incidents that keep their id keep their status."""
    from healthsec.analyze.attack import enrich_alert
    from healthsec.analyze.correlate import correlate

    if window <= timedelta(0):
        raise Invalid("the correlation window must be positive")
    alerts = store.alerts.all()
    if kb is not None:
        alerts = [enrich_alert(a, kb) for a in alerts]
    hosts = {a.ip: a.name for a in store.assets.list() if a.ip}
    incidents = correlate(alerts, hosts, window=window)
    old = {i.id: i.status for i in _all(store)}
    incidents = [dataclasses.replace(i, status=old.get(i.id, i.status)) for i in incidents]
    store.incidents.replace_all(incidents)
    store.audit.record(actor, "incidents.correlate", None, alerts=len(alerts), incidents=len(incidents))
    return CorrelationSummary(len(alerts), len(incidents), sum(len(i.alert_ids) for i in incidents))
