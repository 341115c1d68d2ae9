"""The overview use case: open incidents by severity, alerts per hour, top assets, detectors, MTTD/MTTR."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from statistics import mean
from typing import TYPE_CHECKING, Any

from healthsec.model import IncidentStatus, Severity
from healthsec.model.triage import ActivityKind

if TYPE_CHECKING:
    from healthsec.config import Settings
    from healthsec.model import Incident
    from healthsec.store import Store

OPEN = (IncidentStatus.OPEN, IncidentStatus.INVESTIGATING, IncidentStatus.CONTAINED)
RESOLVED = frozenset({IncidentStatus.CONTAINED.value, IncidentStatus.CLOSED.value})
HOURS = 24
SAMPLE = 50  # incidents (newest) that the mean times are taken over


@dataclass(frozen=True, slots=True)
class AssetAtRisk:
    name: str
    criticality: str
    score: float
    patient_safety: float  # 0..1, the asset's patient-safety impact factor
    explanation: str


@dataclass(frozen=True, slots=True)
class Overview:
    """What the overview page shows; the mean times are None when no incident gives one."""

    open_by_severity: list[tuple[Severity, int]]  # critical first
    open_total: int
    incidents_total: int
    alerts_total: int
    alerts_per_hour: list[tuple[datetime, int]]  # HOURS buckets ending with the latest alert's hour
    top_assets: list[AssetAtRisk]
    detectors: list[dict[str, Any]]
    mttd_minutes: float | None
    mttr_minutes: float | None
    mean_sample: int
    newest: list[Incident]


def _respond_minutes(store: Store, incidents: list[Incident]) -> list[float]:
    """Minutes from an incident's first event to its first move to contained or closed."""
    from healthsec.services.incidents import activity

    repo = activity(store)
    out = []
    for inc in incidents:
        done = [
            h.ts
            for h in repo.for_incident(inc.id)
            if h.kind is ActivityKind.STATUS and (h.value or "") in RESOLVED
        ]
        if done:
            out.append(max(0.0, (min(done) - inc.first_seen).total_seconds() / 60))
    return out


def overview(store: Store, settings: Settings, *, top: int = 5, full: bool = True) -> Overview:
    """The organisation's state now (the chart's window ends at the newest alert, so replays show too).

    ``full=False`` leaves out what costs most (asset risk, detector states, mean times): the live refresh.
    """
    from healthsec.services.awareness import detection_minutes
    from healthsec.services.detectors import detector_states
    from healthsec.services.risk import risk_model
    from healthsec.store.aggregates import HOUR, Aggregates, hour_floor

    agg = Aggregates(store.engine, store.org)
    counts = agg.incident_counts()
    open_values = {s.value for s in OPEN}
    by_sev = {sev: 0 for sev in Severity}
    for (status, sev), n in counts.items():
        if status in open_values:
            by_sev[Severity(sev)] += n
    latest = agg.latest_alert_ts()
    hours: list[tuple[datetime, int]] = []
    if latest is not None:
        end = hour_floor(latest) + HOUR
        per_hour = agg.alerts_per_hour(end - HOURS * HOUR, end)
        hours = [(h, per_hour.get(h, 0)) for h in (end - (HOURS - i) * HOUR for i in range(HOURS))]
    assets = []
    for r in risk_model(store).ranking(top) if full else []:
        safety = next((f.value for f in r.impact_factors if f.name == "patient_safety"), 0.0)
        assets.append(AssetAtRisk(r.asset_name, r.criticality, r.score, safety, r.explain()))
    newest, _ = agg.incidents_page(limit=SAMPLE if full else 8, newest_first=True)
    detect = [m for inc in newest if (m := detection_minutes(store, inc)) is not None] if full else []
    respond = _respond_minutes(store, newest) if full else []
    return Overview(
        open_by_severity=sorted(by_sev.items(), key=lambda kv: -int(kv[0])),
        open_total=sum(by_sev.values()),
        incidents_total=sum(counts.values()),
        alerts_total=agg.alert_count(),
        alerts_per_hour=hours,
        top_assets=assets,
        detectors=detector_states(store, settings) if full else [],
        mttd_minutes=mean(detect) if detect else None,
        mttr_minutes=mean(respond) if respond else None,
        mean_sample=len(newest),
        newest=newest[:8],
    )
