"""What an analyst reads on one incident: its detail plus a timeline, evidence events and the entity graph.

Evidence is shown scrubbed of PHI, and patients appear only as pseudonyms (``patient-<hex>``): values that a
detector already pseudonymised are kept, others get a keyed pseudonym of this process (never the raw id).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from healthsec.model.common import EntityKind
from healthsec.services.incidents import IncidentDetail, incident_detail

if TYPE_CHECKING:
    from healthsec.analyze.attack import AttackKB
    from healthsec.store import Store

EVIDENCE_PER_ALERT = 5
_DISPLAY_KEY = secrets.token_bytes(32)  # per process: pseudonyms on screen cannot be reversed or joined


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    ts: datetime
    kind: str  # "alert" or an activity kind (status, assign, comment)
    text: str
    actor: str | None
    ref: str | None  # the alert id, for alerts


@dataclass(frozen=True, slots=True)
class IncidentView:
    detail: IncidentDetail
    timeline: list[TimelineEntry]
    tactic_chain: list[str]
    evidence: dict[str, list[dict[str, Any]]]  # alert id -> scrubbed event bodies
    missing_evidence: dict[str, int]  # alert id -> evidence ids not (or no longer) stored
    nodes: list[tuple[str, str, str]]  # (key, kind, label)
    links: list[tuple[str, str]]


def display_entity(kind: str, value: str) -> str:
    """How an entity is shown: patients only as pseudonyms."""
    if kind != EntityKind.PATIENT.value or value.startswith("patient-"):
        return value
    from healthsec.privacy.pseudonymise import Pseudonymiser

    return Pseudonymiser(_DISPLAY_KEY).token("patient", value)


def incident_view(store: Store, incident_id: str, kb: AttackKB | None = None) -> IncidentView:
    """The incident page's content (NotFound for an id outside the store's organisation)."""
    from healthsec.model.codec import to_dict
    from healthsec.privacy.phi import scrub_obj

    d = incident_detail(store, incident_id, kb)
    timeline = [TimelineEntry(a.ts, "alert", a.title, a.detector, a.id) for a in d.alerts]
    timeline += [TimelineEntry(h.ts, h.kind.value, h.value or "", h.actor, None) for h in d.activity]
    timeline.sort(key=lambda t: (t.ts, t.kind != "alert"))
    chain = list(d.incident.tactics)
    if kb is not None:
        chain.sort(key=lambda t: (kb.tactic_rank(t) or 10_000, t))
    evidence: dict[str, list[dict[str, Any]]] = {}
    missing: dict[str, int] = {}
    for a in d.alerts:
        found = [e for eid in a.evidence[:EVIDENCE_PER_ALERT] if (e := store.events.get(eid)) is not None]
        evidence[a.id] = [scrub_obj(to_dict(e)) for e in found]
        missing[a.id] = min(len(a.evidence), EVIDENCE_PER_ALERT) - len(found)
    nodes: dict[str, tuple[str, str, str]] = {}
    links: set[tuple[str, str]] = set()
    for a in d.alerts:
        keys = []
        for ent in a.entities:
            label = display_entity(ent.kind.value, ent.value)
            key = f"{ent.kind.value}:{label}"
            nodes.setdefault(key, (key, ent.kind.value, label))
            keys.append(key)
        links.update((x, y) for i, x in enumerate(keys) for y in keys[i + 1 :] if x != y)
    for ent in d.incident.entities:
        label = display_entity(ent.kind.value, ent.value)
        key = f"{ent.kind.value}:{label}"
        nodes.setdefault(key, (key, ent.kind.value, label))
    return IncidentView(d, timeline, chain, evidence, missing, list(nodes.values()), sorted(links))
