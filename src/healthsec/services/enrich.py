"""Playbook enrichment (ATT&CK, known vulnerabilities of the assets, partner intelligence) and sharing of an
incident through the single exit door (``share.outbound.outbound``)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from healthsec.respond.playbook import IncidentContext
from healthsec.store import Store


def _attack(ctx: IncidentContext) -> list[str]:
    from healthsec.ingest.attack_data import load_attack

    kb = load_attack()
    lines = []
    for tid in sorted(ctx.techniques):
        tech = kb.technique(tid)
        if tech is None:
            lines.append(f"{tid}: not in the pinned ATT&CK copy")
            continue
        mits = ", ".join(m.name for m in kb.mitigations_for(tid)[:3]) or "none listed"
        groups = ", ".join(kb.healthcare_groups_using(tid)[:3]) or "none known"
        lines.append(f"{tid} {tech.name}: mitigations {mits}; healthcare-targeting groups {groups}")
    return lines or ["no ATT&CK technique on the incident"]


def _vulns(store: Store, ctx: IncidentContext) -> list[str]:
    from healthsec.store.vulns import VulnRepository

    repo = VulnRepository(store.engine, store.org)
    assets = ctx.extra.get("assets", {})
    lines = []
    for name, asset in sorted(assets.items()):
        found = repo.list(asset.id)
        kev = [v.cve for v in found if v.known_exploited]
        worst = max((v.base_score or 0.0 for v in found), default=None)
        lines.append(
            f"{name}: {len(found)} known vulnerabilities"
            + (f", worst CVSS {worst:.1f}" if worst else "")
            + (f", known exploited: {', '.join(kev[:5])}" if kev else "")
        )
    return lines or ["no inventoried asset touched"]


def _intel(store: Store, ctx: IncidentContext) -> list[str]:
    """Observables of the incident seen in partners' STIX objects stored by the sharing side."""
    from healthsec.store.schema_sharing import share_objects

    values = {v for _, v, _ in ctx.entities}
    hits: dict[str, set[str]] = {}
    t = share_objects
    stmt = select(t.c.source, t.c.body).where(t.c.org == store.org, t.c.type.in_(("indicator", "ipv4-addr")))
    with store.engine.connect() as conn:
        for source, body in conn.execute(stmt):
            text = body if isinstance(body, str) else json.dumps(body)
            for v in values:
                if v in text:
                    hits.setdefault(v, set()).add(source or "partner")
    return [f"{v}: seen by {', '.join(sorted(s))}" for v, s in sorted(hits.items())] or [
        "no observable of this incident in partner intelligence"
    ]


def enrich(store: Store, source: str, ctx: IncidentContext) -> list[str]:
    if source == "attack":
        return ["ATT&CK:", *_attack(ctx)]
    if source == "vulns":
        return ["Known vulnerabilities:", *_vulns(store, ctx)]
    if source == "intel":
        return ["Partner intelligence:", *_intel(store, ctx)]
    raise ValueError(f"unknown enrichment source {source!r}")


def share_incident(store: Store, incident_id: str, partner: str, tlp: str, keys: Any) -> dict[str, Any]:
    """Clear the incident for one partner through the exit door and publish it to our TAXII collection.

    Partners read the collection through the same door again (the TAXII server clears per partner)."""
    from healthsec.share.keys import load_keys
    from healthsec.share.known import known_from_store
    from healthsec.share.outbound import known_identifiers, outbound
    from healthsec.share.policy import COMMUNITY_IDENTITY, TLP, PartnerPolicy, policy_from_dict
    from healthsec.share.stix import export_bundle
    from healthsec.share.stix_ids import sdo_id
    from healthsec.store.sharing import Sharing

    level = TLP.parse(tlp)
    keys = keys or load_keys()
    inc = store.incidents.get(incident_id)
    if inc is None:
        raise ValueError(f"no incident {incident_id}")
    alerts = [a for aid in inc.alert_ids if (a := store.alerts.get(aid)) is not None]
    sh = Sharing.of(store)
    if partner == "community":
        policy = PartnerPolicy("community", str(COMMUNITY_IDENTITY["id"]), max_tlp=level)
    else:
        record = sh.partners.get(partner)
        if record is None:
            raise ValueError(f"unknown partner {partner!r}")
        org = str(record["organisation"])
        org = org if org.startswith("identity--") else sdo_id("identity", "organisation", org)
        policy = policy_from_dict(partner, org, record.get("policy"))
    bundle = export_bundle([inc], alerts, producer=store.org, tlp=level)
    known = known_identifiers([inc], alerts)
    for kind, vals in known_from_store(store).items():
        known.setdefault(kind, set()).update(vals)
    cleared = outbound(bundle["objects"], policy, keys, known=known)
    coll = sh.collections.ensure("ours", "Published by us")
    res = sh.objects.add_many(coll["id"], bundle["objects"])
    return {
        "partner": partner,
        "cleared": len(cleared.objects),
        "withheld": len(cleared.withheld),
        "published": len(res.added),
        "collection": coll["id"],
    }
