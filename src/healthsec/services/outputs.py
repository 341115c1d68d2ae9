"""SIEM outputs: alerts and incidents into the one outbox, per destination; list, render, backfill.

Each configured destination (``[[outputs]]`` in the settings) is an outbox channel ``out:<name>``. When the
pipeline's response hook sees incidents change, every incident (in its new version) and each of its alerts
not yet queued is written to the outbox in one transaction; ``healthsec notify dispatch`` (the same
dispatcher as the case notifications) then delivers with retries, backoff and dead letters, so nothing is
lost while a SIEM is down. The stored body is the neutral *finding*; the sender writes the destination's
format at delivery time. Patient entities never leave (their pseudonyms stay in healthsec).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from healthsec.model import Alert, Asset, EntityKind, Incident, Severity
from healthsec.model.common import stable_id
from healthsec.store import Store

CHANNEL_PREFIX = "out:"
# patient-safety impact per clinical criticality (the same table risk scoring uses)
_SEVERITY_RANK = {s.label: int(s) for s in Severity}


@lru_cache(maxsize=2)
def _kb_at(path: str, mtime: float) -> Any:
    from healthsec.ingest.attack_data import load_attack

    return load_attack(Path(path))


def _kb() -> Any:
    """The pinned ATT&CK copy, read again only when `healthsec attack` replaced it."""
    from healthsec.ingest.attack_data import active_path

    path = active_path()
    return _kb_at(str(path), path.stat().st_mtime)


def channel(name: str) -> str:
    return CHANNEL_PREFIX + name


class AssetIndex:
    """Assets by id, name and address, to name what an alert is about and its patient-safety impact."""

    def __init__(self, assets: Iterable[Asset]) -> None:
        self.by_key: dict[str, Asset] = {}
        for a in assets:
            for key in (a.id, a.name, a.ip):
                if key:
                    self.by_key.setdefault(key.lower(), a)

    def of(self, entities: Iterable[Any]) -> list[Asset]:
        seen: dict[str, Asset] = {}
        for e in entities:
            if e.kind in (EntityKind.HOST, EntityKind.IP, EntityKind.DEVICE):
                a = self.by_key.get(str(e.value).lower())
                if a is not None:
                    seen.setdefault(a.id, a)
        return sorted(seen.values(), key=lambda a: (-int(a.criticality), a.id))


def _kb_names(kb: Any, techniques: Iterable[str], tactics: Iterable[str]) -> dict[str, Any]:
    if kb is None:
        return {}
    names: dict[str, str] = {}
    for t in techniques:
        for tid in {t, t.split(".")[0]}:
            tech = kb.technique(tid)
            if tech is not None:
                names[tid] = tech.name
    tactic_ids = {}
    for t in tactics:
        tac = kb.tactic(t)
        if tac is not None:
            tactic_ids[t] = tac.id
    return {"technique_names": names, "tactic_ids": tactic_ids}


def finding_of(
    item: Alert | Incident,
    *,
    org: str,
    assets: AssetIndex,
    kb: Any = None,
    console_url: str | None = None,
) -> dict[str, Any]:
    """The neutral finding every format starts from (no patient entity, no raw event content)."""
    from healthsec.analyze.risk import PATIENT_SAFETY

    entities = [
        {"kind": str(e.kind), "value": e.value, "role": str(e.role)}
        for e in item.entities
        if e.kind != EntityKind.PATIENT
    ]
    hit = assets.of(item.entities)
    out: dict[str, Any] = {
        "org": org,
        "id": item.id,
        "title": item.title,
        "score": round(float(item.score), 4),
        "severity": item.severity.label,
        "techniques": list(item.techniques),
        "tactics": list(item.tactics),
        "entities": entities,
        "assets": [
            {
                "id": a.id,
                "name": a.name,
                "ip": a.ip,
                "zone": a.zone,
                "criticality": a.criticality.name.lower(),
            }
            for a in hit
        ],
        "patient_safety": (
            {"criticality": hit[0].criticality.name.lower(), "impact": PATIENT_SAFETY[hit[0].criticality]}
            if hit
            else None
        ),
        **_kb_names(kb, item.techniques, item.tactics),
    }
    if isinstance(item, Alert):
        out.update(
            event="alert",
            ts=item.ts.isoformat(),
            detector=item.detector,
            detector_version=item.detector_version,
            explanation=item.explanation,
        )
        link = f"alerts/{item.id}"
    else:
        out.update(
            event="incident",
            ts=item.last_seen.isoformat(),
            first_seen=item.first_seen.isoformat(),
            last_seen=item.last_seen.isoformat(),
            explanation=item.summary or item.title,
            alert_ids=list(item.alert_ids),
            status=str(item.status),
        )
        link = f"incidents/{item.id}"
    if console_url:
        out["link"] = console_url.rstrip("/") + "/" + link
    return out


def message_id(dest: str, item: Alert | Incident) -> str:
    """Stable per destination and version: an alert once; an incident again when it grew or changed."""
    if isinstance(item, Alert):
        return stable_id("out", dest, item.id)
    return stable_id("out", dest, item.id, item.last_seen.isoformat(), len(item.alert_ids), item.severity)


def _wanted(dest: Any, item: Alert | Incident) -> bool:
    kind = "alert" if isinstance(item, Alert) else "incident"
    return kind in dest.findings and int(item.severity) >= _SEVERITY_RANK[dest.min_severity]


def enqueue(
    store: Store,
    settings: Any,
    incidents: Sequence[Incident] = (),
    alerts: Sequence[Alert] = (),
    *,
    now: datetime | None = None,
    with_incident_alerts: bool = True,
) -> int:
    """Queue the incidents (and their alerts not yet queued) for every destination; return messages added."""
    from healthsec.store.cases import cases

    dests = tuple(settings.outputs)
    if not dests or not (incidents or alerts):
        return 0
    repo = cases(store)
    items: dict[str, Alert | Incident] = {a.id: a for a in alerts}
    if with_incident_alerts:
        want = [aid for inc in incidents for aid in inc.alert_ids if aid not in items]
        queued = repo.known_messages([stable_id("out", d.name, aid) for d in dests for aid in want])
        for aid in want:
            if all(stable_id("out", d.name, aid) in queued for d in dests):
                continue
            alert = store.alerts.get(aid)
            if alert is not None:
                items[aid] = alert
    index = AssetIndex(store.assets.list())
    kb = _kb()
    ts = now or datetime.now(UTC)
    added = 0
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for item in [*items.values(), *incidents]:
        body: dict[str, Any] | None = None
        for d in dests:
            if not _wanted(d, item):
                continue
            if body is None:
                body = finding_of(item, org=store.org, assets=index, kb=kb, console_url=settings.console_url)
            rows.append((message_id(d.name, item), channel(d.name), body))
    with repo.tx() as tx:
        for mid, chan, body in rows:
            added += tx.enqueue(mid, chan, ts, body)
    return added


def on_incidents(store: Store, incidents: Sequence[Incident], settings: Any) -> int:
    """The pipeline hook's share for outputs: never stops detection (failures are logged by the caller)."""
    return enqueue(store, settings, incidents)


def backfill(
    store: Store, settings: Any, *, since: datetime | None = None, limit: int = 10_000
) -> dict[str, int]:
    """Queue stored alerts and incidents (e.g. after a destination was added); already queued ones are not."""
    alerts = store.alerts.list(since=since, limit=limit)
    incidents = [i for i in store.incidents.list(limit=limit) if since is None or i.last_seen >= since]
    n = enqueue(store, settings, incidents, alerts, with_incident_alerts=False)
    return {"alerts": len(alerts), "incidents": len(incidents), "queued": n}


def senders(settings: Any) -> dict[str, Any]:
    """One sender per configured destination, keyed by its outbox channel."""
    from healthsec.respond.siem_send import HttpSender, SyslogSender

    out: dict[str, Any] = {}
    for d in settings.outputs:
        token = d.token_file.read_text(encoding="utf-8").strip() if d.token_file else None
        if d.transport == "syslog":
            out[channel(d.name)] = SyslogSender(
                d.name, d.host, d.port, d.protocol, d.format, d.ca_file, d.tls_verify
            )
        else:
            out[channel(d.name)] = HttpSender(
                d.name, d.url, d.transport, d.format, d.index, token, d.ca_file, d.tls_verify
            )
    return out


def render_stored(
    store: Store, settings: Any, fmt: str, *, kind: str = "alert", limit: int = 100
) -> list[str]:
    """Stored alerts or incidents in one format (``healthsec outputs render``)."""
    from healthsec.respond.siem import render

    index = AssetIndex(store.assets.list())
    kb = _kb()
    items: list[Alert | Incident] = []
    items.extend(store.alerts.list(limit=limit) if kind == "alert" else store.incidents.list(limit=limit))
    return [
        render(finding_of(i, org=store.org, assets=index, kb=kb, console_url=settings.console_url), fmt)
        for i in items
    ]


def describe(settings: Any) -> list[Mapping[str, Any]]:
    """The destinations as configured (no token content)."""
    return [
        {
            "name": d.name,
            "channel": channel(d.name),
            "transport": d.transport,
            "format": d.format,
            "target": d.url or f"{d.protocol}://{d.host}:{d.port}",
            "findings": ",".join(d.findings),
            "min_severity": d.min_severity,
        }
        for d in settings.outputs
    ]
