"""Gather the risk-awareness report of one organisation for a period and write it as HTML and PDF."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from healthsec.respond.awareness import AwarenessData, render_html, render_pdf

if TYPE_CHECKING:
    from healthsec.model import Incident
    from healthsec.services.cases import CaseService
    from healthsec.store import Store


def _community(paths: Sequence[Path], ours: Counter[str]) -> tuple[list[dict[str, Any]], int]:
    """Mean noisy counts per technique over the community's DP aggregates (``healthsec share stats``)."""
    totals: Counter[str] = Counter()
    n = 0
    for p in paths:
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"community aggregate {p}: {exc}") from None
        if doc.get("type") != "healthsec-aggregate":
            raise ValueError(f"community aggregate {p}: not a healthsec-aggregate document")
        totals.update({k: float(v) for k, v in doc.get("incidents_by_technique", {}).items()})
        n += 1
    if not n:
        return [], 0
    keys = sorted(set(totals) | set(ours), key=lambda k: -(totals[k] / n + ours[k]))
    return [{"technique": k, "ours": ours[k], "community": round(totals[k] / n, 2)} for k in keys[:15]], n


def detection_minutes(store: Store, inc: Incident) -> float | None:
    """Minutes from an incident's first evidence event to its first alert (None without stored evidence)."""
    from healthsec.store.aggregates import Aggregates

    linked = {a.id: a for a in store.alerts.list(incident_id=inc.id, limit=max(len(inc.alert_ids), 1))}
    alerts = [a for aid in inc.alert_ids if (a := linked.get(aid) or store.alerts.get(aid)) is not None]
    times = Aggregates(store.engine, store.org).event_times([e for a in alerts for e in a.evidence[:200]])
    # an alert could be raised once its latest evidence was seen (as the pipeline's raised_at)
    seen = {a.id: [times[e] for e in a.evidence[:200] if e in times] for a in alerts}
    raised = [max(ts) for ts in seen.values() if ts]
    first = min((t for ts in seen.values() for t in ts), default=None)
    if not raised or first is None:
        return None
    return max(0.0, (min(raised) - first).total_seconds() / 60)


def gather(
    svc: CaseService, since: datetime | None, until: datetime | None, community: Sequence[Path] = ()
) -> AwarenessData:
    from healthsec.services.breach import clock_rows
    from healthsec.services.risk import risk_model
    from healthsec.store.vulns import VulnRepository

    store = svc.store
    until = (until or datetime.now(UTC)).astimezone(UTC)
    since = (since or until - timedelta(days=7)).astimezone(UTC)
    if since >= until:
        raise ValueError(f"--since {since.isoformat()} is not before --until {until.isoformat()}")
    incidents = [
        i
        for i in store.incidents.list(limit=max(store.incidents.count(), 1))
        if since <= i.first_seen < until
    ]
    tactics: Counter[str] = Counter(t for i in incidents for t in i.tactics)
    severities: Counter[str] = Counter(i.severity.label for i in incidents)
    detect, respond = [], []
    case_of: dict[str, datetime] = {}
    for c in svc.repo.list(limit=100_000):
        for iid in c["body"]["incidents"]:
            case_of[iid] = min(case_of.get(iid, c["opened_at"]), c["opened_at"])
    for inc in incidents:
        minutes = detection_minutes(store, inc)
        if minutes is not None:
            detect.append((inc.first_seen, minutes))
        if inc.id in case_of:
            respond.append(
                (inc.first_seen, max(0.0, (case_of[inc.id] - inc.first_seen).total_seconds() / 60))
            )
    assets = store.assets.list()
    vulns = VulnRepository(store.engine, store.org).list()
    model = risk_model(store)
    top = []
    for r in model.ranking(10):
        safety = next((f.value for f in r.impact_factors if f.name == "patient_safety"), 0.0)
        top.append(
            {"asset": r.asset_name, "score": r.score, "patient_safety": safety, "explanation": r.explain()}
        )
    names = {a.id: a.name for a in assets}
    kev = [{"asset": names.get(v.asset_id, v.asset_id), "cve": v.cve} for v in vulns if v.known_exploited]
    clocks = [c for c in clock_rows(svc) if c["state"] in ("due", "late")]
    ours: Counter[str] = Counter(t for i in incidents for t in set(i.techniques))
    comm, n = _community(community, ours)
    return AwarenessData(
        org=store.org,
        since=since,
        until=until,
        incidents=len(incidents),
        by_tactic=tactics.most_common(),
        by_severity=sorted(severities.items(), key=lambda kv: kv[0]),
        detect_minutes=sorted(detect),
        respond_minutes=sorted(respond),
        top_risks=top,
        kev=kev,
        open_clocks=clocks,
        community=comm,
        community_sources=n,
    )


def write_report(
    svc: CaseService,
    out: Path,
    since: datetime | None,
    until: datetime | None,
    community: Sequence[Path] = (),
) -> list[Path]:
    data = gather(svc, since, until, community)
    try:
        out.mkdir(parents=True, exist_ok=True)
        html_path, pdf_path = out / "awareness.html", out / "awareness.pdf"
        html_path.write_text(render_html(data), encoding="utf-8")
        pdf_path.write_bytes(render_pdf(data))
    except OSError as exc:
        raise ValueError(f"cannot write the report into {out}: {exc.strerror}") from None
    return [html_path, pdf_path]
