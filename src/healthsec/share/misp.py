"""MISP event JSON export and import, converted by MISP's own ``misp-stix`` so MISP instances accept it.

Export takes only a :class:`~healthsec.share.outbound.Cleared` value (privacy and policy already
applied) and converts its STIX 2.1 objects with misp-stix's ``ExternalSTIX2toMISPParser``; we then add
what MISP users search by: ATT&CK techniques as ``mitre-attack-pattern`` galaxy clusters and tags, the
event's TLP 2.0 tag and the creating organisation. Import converts a MISP event with misp-stix's
``MISPtoSTIX21Parser`` into plain STIX dicts for the guarded STIX import.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from healthsec.share.outbound import Cleared
from healthsec.share.policy import TLP, StixObject, tlp_of

MAX_MISP_BYTES = 20 * 1024 * 1024
_TECHNIQUE = re.compile(r"^T\d{4}(?:\.\d{3})?$")
_ATTACK_GALAXY = {
    "type": "mitre-attack-pattern",
    "name": "Attack Pattern",
    "namespace": "mitre-attack",
    "uuid": "c4e851fa-775f-11e7-8163-b774922098cd",  # MISP's mitre-attack-pattern galaxy
    "description": "ATT&CK Tactic",
}
# ATT&CK for ICS (T0xxx) lives in MISP's own galaxy, whose cluster values are the bare technique names.
_ICS_GALAXY = {
    "type": "mitre-ics-techniques",
    "name": "Techniques",
    "namespace": "mitre-attack-ics",
    "uuid": "99261a7e-2270-40eb-823f-834cc1ad3159",  # MISP's mitre-ics-techniques galaxy
    "description": "ATT&CK for ICS Techniques",
}


# What misp-stix makes of the event itself; an event with nothing else carries no intelligence.
_CONTAINERS = frozenset({"marking-definition", "identity", "grouping", "report", "note"})


class MispFormatError(ValueError):
    """A MISP event that cannot be read or converted; the message names the reason."""


def _event_tlp(objects: tuple[StixObject, ...]) -> TLP | None:
    levels = [t for o in objects if o.get("type") != "marking-definition" and (t := tlp_of(o))]
    return max(levels, key=lambda t: t.rank) if levels else None


def _attack_clusters(
    objects: tuple[StixObject, ...], names: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    clusters: dict[str, dict[str, Any]] = {}
    for obj in objects:
        if obj.get("type") != "attack-pattern":
            continue
        ext = [r for r in obj.get("external_references") or () if r.get("source_name") == "mitre-attack"]
        tid = str(ext[0].get("external_id", "")) if ext else ""
        if not _TECHNIQUE.match(tid):
            continue
        name = (names or {}).get(tid) or str(obj.get("name") or tid)
        if tid.startswith("T0"):
            galaxy, value = "mitre-ics-techniques", name
        else:  # MISP's cluster values read "<technique name> - <id>"; a bare id matches no cluster
            galaxy, value = "mitre-attack-pattern", (tid if name == tid else f"{name} - {tid}")
        clusters[tid] = {
            "type": galaxy,
            "value": value,
            "tag_name": f'misp-galaxy:{galaxy}="{value}"',
            "description": str(obj.get("description") or ""),
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://attack.mitre.org/techniques/{tid}")),
            "meta": {"external_id": [tid], "refs": [str(r.get("url")) for r in ext if r.get("url")]},
        }
    return list(clusters.values())


def _cves(objects: tuple[StixObject, ...]) -> list[str]:
    found: list[str] = []
    for obj in objects:
        if obj.get("type") == "vulnerability":
            found += [
                str(r["external_id"])
                for r in obj.get("external_references") or ()
                if r.get("source_name") == "cve" and r.get("external_id")
            ]
    return list(dict.fromkeys(found))


def to_misp_event(
    cleared: Cleared, *, title: str | None = None, technique_names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """One MISP event (``{"Event": {...}}``) from objects cleared for a partner.

    ``technique_names`` (ATT&CK id → name, e.g. from the pinned ATT&CK data) makes the galaxy tags match
    the clusters of MISP's own ``mitre-attack-pattern`` galaxy.
    """
    import stix2
    from misp_stix_converter import ExternalSTIX2toMISPParser

    objects = cleared.objects
    if not any(o.get("type") not in ("marking-definition", "identity") for o in objects):
        raise ValueError(f"nothing cleared for partner {cleared.partner.name!r}: no MISP event to write")
    parser = ExternalSTIX2toMISPParser()
    parser.load_stix_bundle(stix2.parse(cleared.bundle(), allow_custom=True))
    parser.parse_stix_bundle(single_event=True, title=title)
    event: dict[str, Any] = orjson.loads(parser.misp_event.to_json())
    event.setdefault("info", title or "healthsec shared incident")
    tags: list[dict[str, Any]] = [
        t for t in event.get("Tag", []) if not str(t.get("name", "")).startswith("tlp:")
    ]
    level = _event_tlp(objects)
    if level is not None:
        tags.append({"name": f"tlp:{level.value}"})
    clusters = _attack_clusters(objects, technique_names)
    if clusters:
        galaxies = [g for g in event.get("Galaxy", []) if g.get("type") != "stix-2.1-attack-pattern"]
        for galaxy in (_ATTACK_GALAXY, _ICS_GALAXY):
            members = [c for c in clusters if c["type"] == galaxy["type"]]
            if members:
                galaxies.append({**galaxy, "GalaxyCluster": members})
        event["Galaxy"] = galaxies
        tags += [{"name": c["tag_name"]} for c in clusters]
    event["Tag"] = tags
    present = {(a.get("type"), a.get("value")) for a in event.get("Attribute", [])}
    for cve in _cves(objects):  # MISP correlates on vulnerability attributes, not only on galaxies
        if ("vulnerability", cve) not in present:
            event.setdefault("Attribute", []).append(
                {
                    "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"cve:{cve}")),
                    "type": "vulnerability",
                    "category": "External analysis",
                    "value": cve,
                    "to_ids": False,
                }
            )
    creator = next((o for o in objects if o.get("type") == "identity"), None)
    if creator is not None:
        event["Orgc"] = {"name": str(creator.get("name")), "uuid": str(creator["id"]).split("--", 1)[1]}
    return {"Event": event}


def dumps_misp(event: Mapping[str, Any]) -> bytes:
    return orjson.dumps(event, option=orjson.OPT_INDENT_2)


def load_misp(data: bytes | str | Mapping[str, Any], *, source: str = "<input>") -> dict[str, Any]:
    """Parse and shape-check MISP event JSON; errors name the source and the reason."""
    if isinstance(data, bytes | str):
        raw = data.encode() if isinstance(data, str) else data
        if len(raw) > MAX_MISP_BYTES:
            raise MispFormatError(f"{source}: {len(raw)} bytes is over the {MAX_MISP_BYTES}-byte limit")
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MispFormatError(f"{source}: not JSON ({exc})") from None
    else:
        parsed = dict(data)
    if not isinstance(parsed, dict):
        raise MispFormatError(f"{source}: a MISP event is a JSON object, got {type(parsed).__name__}")
    event = parsed.get("Event", parsed)
    if not isinstance(event, dict) or not isinstance(event.get("info"), str):
        raise MispFormatError(f"{source}: not a MISP event (no Event.info)")
    for key in ("Attribute", "Object", "Tag", "Galaxy"):
        if key in event and not isinstance(event[key], list):
            raise MispFormatError(f"{source}: Event.{key} must be a list")
    for n, attr in enumerate(event.get("Attribute", [])):
        if not isinstance(attr, dict) or "type" not in attr or "value" not in attr:
            raise MispFormatError(f"{source}: Event.Attribute[{n}] has no type/value")
    return {"Event": event}


def from_misp_event(data: bytes | str | Mapping[str, Any], *, source: str = "<input>") -> list[StixObject]:
    """STIX 2.1 objects (plain dicts) for a MISP event, to be stored through the guarded STIX import."""
    from misp_stix_converter import MISPtoSTIX21Parser

    event = load_misp(data, source=source)
    parser = MISPtoSTIX21Parser()
    try:
        parser.parse_misp_event(event)
        bundle = orjson.loads(parser.bundle.serialize())
    except Exception as exc:  # the converter raises many types; the caller needs one with the reason
        raise MispFormatError(f"{source}: misp-stix could not convert the event ({exc})") from exc
    objects: list[StixObject] = list(bundle.get("objects", []))
    if not any(o.get("type") not in _CONTAINERS for o in objects):
        raise MispFormatError(f"{source}: the event holds nothing convertible to STIX 2.1")
    return objects


def misp_tlp(event: Mapping[str, Any]) -> TLP | None:
    """The TLP 2.0 level named by a MISP event's tags (most restrictive), None when untagged."""
    body = event.get("Event", event)
    levels: list[TLP] = []
    for tag in body.get("Tag", []) if isinstance(body, Mapping) else []:
        name = str(tag.get("name", "")) if isinstance(tag, Mapping) else ""
        if name.lower().startswith("tlp:"):
            try:
                levels.append(TLP.parse(name))
            except ValueError:
                continue
    return max(levels, key=lambda t: t.rank) if levels else None


__all__ = ["MispFormatError", "dumps_misp", "from_misp_event", "load_misp", "misp_tlp", "to_misp_event"]
