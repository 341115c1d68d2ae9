"""Reaction time per campaign: from the first malicious event to the first alert, incident, case and
containment request ready for approval (pure; the benchmark and the demo feed it a run's timestamps)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from healthsec.model import Alert, Incident

STAGES = ("alert", "incident", "case", "containment")


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else round((end - start).total_seconds(), 1)


def reaction_times(
    first_event: Mapping[str, datetime],
    alerts: Sequence[Alert],
    campaign_of: Callable[[Alert], str | None],
    raised_at: Mapping[str, datetime],
    incidents: Sequence[Incident],
    case_opened: Mapping[str, datetime],
    containment_ready: Mapping[str, datetime],
) -> list[dict[str, Any]]:
    """One row per campaign (in ``first_event`` order) with seconds to each stage (None: never reached).

    An incident exists as soon as its first alert is raised; it belongs to the campaign most of its
    alerts belong to. ``case_opened`` and ``containment_ready`` are keyed by incident id.
    """
    camp = {a.id: campaign_of(a) for a in alerts}
    alert_time = {a.id: raised_at.get(a.id, a.ts) for a in alerts}
    rows = []
    for name, start in first_event.items():
        mine = [a.id for a in alerts if camp[a.id] == name]
        incs = []
        for inc in incidents:
            votes = [camp.get(a) for a in inc.alert_ids]
            if votes and max(set(votes), key=votes.count) == name:
                incs.append(inc)
        inc_at = [
            min(alert_time[a] for a in i.alert_ids if a in alert_time)
            for i in incs
            if any(a in alert_time for a in i.alert_ids)
        ]
        case_at = [case_opened[i.id] for i in incs if i.id in case_opened]
        ctn_at = [containment_ready[i.id] for i in incs if i.id in containment_ready]
        rows.append(
            {
                "campaign": name,
                "first_event": start.isoformat(),
                "alert_s": _seconds(start, min((alert_time[a] for a in mine), default=None)),
                "incident_s": _seconds(start, min(inc_at, default=None)),
                "case_s": _seconds(start, min(case_at, default=None)),
                "containment_s": _seconds(start, min(ctn_at, default=None)),
            }
        )
    return rows
