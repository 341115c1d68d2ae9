"""Partner reports meet local incidents: a report naming ATT&CK techniques seen in an open incident
raises that incident's priority (severity one step, score up), with the reason kept in its summary."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from healthsec.model import Incident, IncidentStatus, Severity

_TECH = re.compile(r"^T\d{4}(\.\d{3})?$")
OPEN = frozenset({IncidentStatus.OPEN, IncidentStatus.INVESTIGATING})
SCORE_STEP = 0.15


def report_techniques(report: Mapping[str, Any], objects_by_id: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """ATT&CK ids a STIX report carries: referenced attack-patterns' ``mitre-attack`` external ids, its
    own external references, labels like ``T1486`` and the ``x_healthsec_techniques`` a tagger wrote."""
    found: set[str] = set()

    def ext(obj: Mapping[str, Any]) -> None:
        for ref in obj.get("external_references") or []:
            eid = str(ref.get("external_id", ""))
            if _TECH.match(eid):
                found.add(eid)

    ext(report)
    for ref in report.get("object_refs") or []:
        obj = objects_by_id.get(str(ref))
        if obj and obj.get("type") == "attack-pattern":
            ext(obj)
    for label in list(report.get("labels") or []) + list(report.get("x_healthsec_techniques") or []):
        if _TECH.match(str(label).upper()):
            found.add(str(label).upper())
    return found


def _base(t: str) -> str:
    return t.split(".")[0]


@dataclass(frozen=True, slots=True)
class Raised:
    incident: Incident
    before: Severity
    report_ids: tuple[str, ...]
    techniques: tuple[str, ...]
    reason: str


def raise_priority(incidents: Iterable[Incident], report_techniques: Mapping[str, set[str]]) -> list[Raised]:
    """Open incidents sharing a technique (sub-techniques count by their parent) with a partner report:
    severity one step up (at most critical) and score + 0.15 (at most 1). Pure: nothing is stored."""
    out: list[Raised] = []
    for inc in incidents:
        if inc.status not in OPEN or not inc.techniques:
            continue
        local = {_base(t) for t in inc.techniques}
        hits = {
            rid: sorted(t for t in techs if _base(t) in local) for rid, techs in report_techniques.items()
        }
        hits = {rid: ts for rid, ts in hits.items() if ts}
        if not hits:
            continue
        techs = tuple(sorted({t for ts in hits.values() for t in ts}))
        new_sev = Severity(min(int(inc.severity) + 1, int(Severity.CRITICAL)))
        reason = f"partner report(s) {', '.join(sorted(hits))} name {', '.join(techs)} seen in this incident"
        if reason in inc.summary:
            continue  # the same reports again: raised once, not at every re-import
        summary = f"{inc.summary} [{reason}]".strip()
        raised = dataclasses.replace(
            inc, severity=new_sev, score=round(min(1.0, inc.score + SCORE_STEP), 4), summary=summary
        )
        out.append(Raised(raised, inc.severity, tuple(sorted(hits)), techs, reason))
    return out
