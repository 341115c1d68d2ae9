"""Build the compact ATT&CK knowledge document from STIX bundles and MISP galaxy clusters (pure, no I/O)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

FORMAT = 1

# ICS tactics that have no Enterprise twin are placed in the unified kill chain by (anchor, offset):
# ICS "evasion" is Enterprise "defense-evasion"; the two ICS effect tactics come right before "impact".
ICS_ANCHORS: dict[str, tuple[str, int]] = {
    "evasion": ("defense-evasion", 0),
    "inhibit-response-function": ("impact", -2),
    "impair-process-control": ("impact", -1),
}

_HEALTH_WORDS = re.compile(
    r"\b(health ?care|healthcare|hospitals?|medical|health|pharma\w*)\b", re.IGNORECASE
)
_SECTOR_KEYS = ("cfr-target-category", "targeted-sector", "target-category")


class BuildError(ValueError):
    """The input is not an ATT&CK STIX bundle we can use; the message says why."""


def _external_id(obj: Mapping[str, Any]) -> str | None:
    for ref in obj.get("external_references", ()):
        if ref.get("source_name") in ("mitre-attack", "mitre-ics-attack") and ref.get("external_id"):
            return str(ref["external_id"])
    return None


def _clean_text(text: str) -> str:
    text = re.sub(r"\(Citation:[^)]*\)", "", text)
    return re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text).strip()


def _first_sentence(text: str | None, limit: int = 240) -> str:
    """Keep descriptions short so the shipped copy stays small; citations and links are dropped."""
    if not text:
        return ""
    text = _clean_text(text).split("\n", 1)[0]
    end = text.find(". ")
    if 0 < end < limit:
        return text[: end + 1]
    return text[:limit].rstrip()


def _active(obj: Mapping[str, Any]) -> bool:
    return not obj.get("revoked") and not obj.get("x_mitre_deprecated")


def bundle_domain(bundle: Mapping[str, Any]) -> str:
    """Which ATT&CK domain a bundle holds ("enterprise-attack", "ics-attack", ...), from its matrix."""
    objects = bundle.get("objects")
    if bundle.get("type") != "bundle" or not isinstance(objects, list):
        raise BuildError("not a STIX bundle (no 'type': 'bundle' with an 'objects' list)")
    for obj in objects:
        if obj.get("type") == "x-mitre-matrix":
            ext = _external_id(obj)
            if ext:
                return ext
    domains = {str(d) for obj in objects for d in obj.get("x_mitre_domains", ())}
    if len(domains) == 1:
        return domains.pop()
    raise BuildError("bundle has no x-mitre-matrix and no single x_mitre_domains value: not ATT&CK data")


def build_domain(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """Techniques, tactics (kill-chain order), mitigations, data components and groups of one domain."""
    domain = bundle_domain(bundle)
    objects: list[Mapping[str, Any]] = list(bundle["objects"])
    by_id = {str(o["id"]): o for o in objects if "id" in o}

    matrix = next((o for o in objects if o.get("type") == "x-mitre-matrix"), None)
    tactic_objs = [o for o in objects if o.get("type") == "x-mitre-tactic" and _active(o)]
    if matrix is not None:
        order = {ref: i for i, ref in enumerate(matrix.get("tactic_refs", ()))}
        tactic_objs.sort(key=lambda o: order.get(str(o["id"]), len(order)))
    tactics = [
        {
            "id": _external_id(o),
            "shortname": o.get("x_mitre_shortname"),
            "name": o.get("name"),
            "description": _first_sentence(o.get("description")),
        }
        for o in tactic_objs
    ]
    if not tactics:
        raise BuildError(f"{domain}: bundle has no tactics")

    techniques: dict[str, dict[str, Any]] = {}
    stix_to_tid: dict[str, str] = {}
    revoked_stix: dict[str, str] = {}
    for o in objects:
        if o.get("type") != "attack-pattern":
            continue
        tid = _external_id(o)
        if tid is None:
            continue
        stix_to_tid[str(o["id"])] = tid
        if o.get("revoked"):
            revoked_stix[str(o["id"])] = tid
            continue
        if o.get("x_mitre_deprecated"):
            continue
        techniques[tid] = {
            "name": o.get("name"),
            "domain": domain,
            "tactics": [
                p["phase_name"]
                for p in o.get("kill_chain_phases", ())
                if str(p.get("kill_chain_name", "")).startswith("mitre")
            ],
            "parent": tid.split(".", 1)[0] if "." in tid else None,
            "platforms": list(o.get("x_mitre_platforms", ())),
            "description": _first_sentence(o.get("description")),
            "mitigations": [],
            "data_components": [],
            "groups": [],
        }

    mitigations: dict[str, dict[str, Any]] = {}
    for o in objects:
        if o.get("type") == "course-of-action" and _active(o):
            mid = _external_id(o)
            if mid and mid.startswith("M"):
                mitigations[mid] = {
                    "name": o.get("name"),
                    "description": _first_sentence(o.get("description")),
                }

    groups: dict[str, dict[str, Any]] = {}
    for o in objects:
        if o.get("type") == "intrusion-set" and _active(o):
            gid = _external_id(o)
            if gid:
                groups[gid] = {
                    "name": o.get("name"),
                    "aliases": sorted({str(a) for a in o.get("aliases", ())} | {str(o.get("name"))}),
                    "description": _first_sentence(o.get("description")),
                    "techniques": [],
                    "domains": [domain],
                }

    # detection strategy -> analytics -> data components: the v18 way to say what data detects a technique
    component_names = {
        str(o["id"]): str(o.get("name"))
        for o in objects
        if o.get("type") == "x-mitre-data-component" and not o.get("revoked")
    }
    strategy_components: dict[str, set[str]] = defaultdict(set)
    for o in objects:
        if o.get("type") != "x-mitre-detection-strategy":
            continue
        for aref in o.get("x_mitre_analytic_refs", ()):
            analytic = by_id.get(aref, {})
            for src in analytic.get("x_mitre_log_source_references", ()):
                name = component_names.get(str(src.get("x_mitre_data_component_ref")))
                if name:
                    strategy_components[str(o["id"])].add(name)

    revoked: dict[str, str] = {}
    for r in objects:
        if r.get("type") != "relationship" or r.get("revoked") or r.get("x_mitre_deprecated"):
            continue
        rtype, src, dst = r.get("relationship_type"), str(r.get("source_ref")), str(r.get("target_ref"))
        tid = stix_to_tid.get(dst)
        if rtype == "revoked-by" and src in revoked_stix and tid:
            revoked[revoked_stix[src]] = tid
            continue
        if tid is None or tid not in techniques:
            continue
        if rtype == "mitigates":
            mid = _external_id(by_id.get(src, {}))
            if mid in mitigations:
                techniques[tid]["mitigations"].append(mid)
        elif rtype == "detects" and src in strategy_components:
            techniques[tid]["data_components"].extend(sorted(strategy_components[src]))
        elif rtype == "uses" and src.startswith("intrusion-set--"):
            gid = _external_id(by_id.get(src, {}))
            if gid in groups:
                groups[gid]["techniques"].append(tid)
                techniques[tid]["groups"].append(gid)
    for tech in techniques.values():
        for key in ("mitigations", "data_components", "groups"):
            tech[key] = sorted(set(tech[key]))
    for group in groups.values():
        group["techniques"] = sorted(set(group["techniques"]))

    return {
        "domain": domain,
        "name": matrix.get("name") if matrix else domain,
        "modified": matrix.get("modified") if matrix else None,
        "tactics": tactics,
        "techniques": techniques,
        "mitigations": mitigations,
        "groups": groups,
        "revoked": revoked,
    }


def _health_evidence(value: Mapping[str, Any]) -> str | None:
    """Why a MISP threat actor counts as targeting healthcare, or None when nothing says so."""
    meta = value.get("meta") or {}
    for key in _SECTOR_KEYS:
        sectors = meta.get(key) or []
        hits = [s for s in sectors if isinstance(s, str) and _HEALTH_WORDS.search(s)]
        if hits:
            return f"MISP threat-actor meta {key}: {', '.join(hits)}"
    description = str(value.get("description") or "")
    match = _HEALTH_WORDS.search(description)
    if match and re.search(r"target|attack|victim|sector", description, re.IGNORECASE):
        start = max(0, match.start() - 60)
        return f"MISP threat-actor description: ...{description[start : match.end() + 60].strip()}..."
    return None


def healthcare_actors(
    threat_actor_cluster: Mapping[str, Any], groups: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Threat actors the MISP galaxy ties to the health sector, linked to ATT&CK groups by name or alias."""
    alias_to_gid: dict[str, str] = {}
    for group_id, g in groups.items():
        for alias in g.get("aliases", ()):
            alias_to_gid.setdefault(str(alias).casefold(), group_id)
    out: list[dict[str, Any]] = []
    for value in threat_actor_cluster.get("values", ()):
        evidence = _health_evidence(value)
        if evidence is None:
            continue
        names = [str(value.get("value"))] + [str(s) for s in (value.get("meta") or {}).get("synonyms", ())]
        gid: str | None = next(
            (alias_to_gid[n.casefold()] for n in names if n.casefold() in alias_to_gid), None
        )
        out.append(
            {
                "name": str(value.get("value")),
                "synonyms": sorted(set(names[1:])),
                "country": (value.get("meta") or {}).get("country"),
                "evidence": evidence,
                "attack_group": gid,
                "misp_uuid": value.get("uuid"),
            }
        )
    out.sort(key=lambda a: (a["attack_group"] is None, a["name"]))
    return out


def merge(
    domains: Iterable[Mapping[str, Any]],
    threat_actor_cluster: Mapping[str, Any] | None,
    sources: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """One document from per-domain parts (later parts of the same domain replace earlier ones)."""
    by_domain: dict[str, Mapping[str, Any]] = {}
    for part in domains:
        by_domain[str(part["domain"])] = part
    groups: dict[str, dict[str, Any]] = {}
    for part in by_domain.values():
        for gid, g in part["groups"].items():
            if gid in groups:
                groups[gid]["techniques"] = sorted(set(groups[gid]["techniques"]) | set(g["techniques"]))
                groups[gid]["domains"] = sorted(set(groups[gid]["domains"]) | set(g["domains"]))
            else:
                groups[gid] = dict(g)
    actors = healthcare_actors(threat_actor_cluster, groups) if threat_actor_cluster else []
    return {
        "format": FORMAT,
        "sources": list(sources),
        "domains": {name: part for name, part in sorted(by_domain.items())},
        "healthcare_actors": actors,
    }


def procedure_examples(bundle: Mapping[str, Any]) -> list[tuple[str, str]]:
    """ATT&CK's own labelled text, as ``(text, technique id)`` pairs: every procedure example (the
    description of a group / software / campaign ``uses`` relationship to a technique) and every
    technique's name. Citations and links are dropped; revoked or deprecated objects are left out.
    Training material for the text tagger (``healthsec intel train-tagger --attack``)."""
    objects = bundle.get("objects")
    if bundle.get("type") != "bundle" or not isinstance(objects, list):
        raise BuildError("not a STIX bundle (no 'type': 'bundle' with an 'objects' list)")
    tids: dict[str, str] = {}
    out: list[tuple[str, str]] = []
    for obj in objects:
        if obj.get("type") == "attack-pattern" and _active(obj):
            tid = _external_id(obj)
            if tid:
                tids[str(obj["id"])] = tid
                out.append((str(obj.get("name", "")), tid))
    for r in objects:
        if r.get("type") != "relationship" or r.get("relationship_type") != "uses" or not _active(r):
            continue
        tid = tids.get(str(r.get("target_ref")))
        text = re.sub(r"</?code>", "", _clean_text(str(r.get("description") or "")))
        if tid and text:
            out.append((text, tid))
    return out
