"""SIEM record formats for alerts and incidents: OCSF Detection Finding, ECS, CEF, RFC 5424, Splunk HEC.

Every format starts from one *finding* (the plain dict :func:`healthsec.services.outputs.finding_of`
builds and the outbox stores) and maps ATT&CK ids, severity, the assets concerned and the patient-safety
impact to the schema's own fields: OCSF ``finding_info.attacks``, ``severity_id``, ``resources[]`` (with
``criticality``) and ``impact_id``/``impact_score``; ECS ``threat.*``, ``event.severity``, ``host.*`` and
``host.risk.static_*``; CEF ``deviceCustom*`` pairs with labels (CEF has no ATT&CK field of its own) and
``cat`` for the tactic; RFC 5424 structured data. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

import orjson

VENDOR = "healthsec"
PRODUCT = "healthsec"
VERSION = "0.1.0"
SEVERITIES = ("info", "low", "medium", "high", "critical")
# our severity -> OCSF severity_id (1 Informational .. 5 Critical)
OCSF_SEVERITY = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
# our severity -> syslog severity (RFC 5424: 2 critical, 3 error, 4 warning, 5 notice, 6 informational)
SYSLOG_SEVERITY = {"info": 6, "low": 5, "medium": 4, "high": 3, "critical": 2}
# our severity -> CEF 0..10
CEF_SEVERITY = {"info": 1, "low": 3, "medium": 5, "high": 8, "critical": 10}
# patient-safety impact (0..1, from the asset's clinical criticality) -> OCSF impact_id (1 Low .. 4 Critical)
OCSF_IMPACT = ((0.9, 4, "Critical"), (0.6, 3, "High"), (0.3, 2, "Medium"), (0.0, 1, "Low"))
# ECS risk levels named as Elastic's entity-risk fields name them
ECS_RISK = ((0.9, "Critical"), (0.6, "High"), (0.3, "Moderate"), (0.1, "Low"), (0.0, "Unknown"))
SD_ID = "healthsec@32473"  # 32473 is the example enterprise number RFC 5612 reserves for documentation


class FormatError(ValueError):
    """A finding cannot be written in the requested format; the text names the finding and the reason."""


def _ms(ts: str) -> int:
    return int(datetime.fromisoformat(ts).timestamp() * 1000)


def _hosts(f: Mapping[str, Any]) -> list[str]:
    return [e["value"] for e in f.get("entities", ()) if e["kind"] == "host"]


def _ips(f: Mapping[str, Any]) -> list[str]:
    return [e["value"] for e in f.get("entities", ()) if e["kind"] == "ip"]


def _users(f: Mapping[str, Any]) -> list[str]:
    return [e["value"] for e in f.get("entities", ()) if e["kind"] == "user"]


def _safety(f: Mapping[str, Any]) -> float | None:
    ps = f.get("patient_safety")
    return None if ps is None else float(ps["impact"])


def _attacks(f: Mapping[str, Any]) -> list[dict[str, Any]]:
    """OCSF attack objects: one per technique (sub-techniques as sub_technique of their parent)."""
    names = f.get("technique_names", {})
    tactics = f.get("tactic_ids", {})
    out: list[dict[str, Any]] = []
    for tid in f.get("techniques", ()):
        base = tid.split(".")[0]
        item: dict[str, Any] = {"technique": {"uid": base, "name": names.get(base)}, "version": "18.1"}
        if base != tid:
            item["sub_technique"] = {"uid": tid, "name": names.get(tid)}
        item["technique"] = {k: v for k, v in item["technique"].items() if v is not None}
        if "sub_technique" in item:
            item["sub_technique"] = {k: v for k, v in item["sub_technique"].items() if v is not None}
        tac = [{"name": t, **({"uid": tactics[t]} if t in tactics else {})} for t in f.get("tactics", ())]
        if tac:
            item["tactics"] = tac
        out.append(item)
    return out


# ---- OCSF 1.5 Detection Finding (class_uid 2004) ------------------------------------------------------
def to_ocsf(f: Mapping[str, Any]) -> dict[str, Any]:
    """The finding as an OCSF 1.5.0 Detection Finding (class 2004, activity 1 Create)."""
    sev = f["severity"]
    info: dict[str, Any] = {
        "uid": f["id"],
        "title": f["title"][:1000],
        "desc": f.get("explanation"),
        "types": [f["event"]],
        "analytic": {
            "uid": f.get("detector") or "correlator",
            "name": f.get("detector") or "healthsec correlator",
            "version": f.get("detector_version"),
            "type_id": 1 if f["event"] == "alert" else 99,  # 1 Rule; 99 Other (correlation)
            **({} if f["event"] == "alert" else {"type": "Correlation"}),
        },
        "first_seen_time": _ms(f.get("first_seen") or f["ts"]),
        "last_seen_time": _ms(f.get("last_seen") or f["ts"]),
    }
    info["analytic"] = {k: v for k, v in info["analytic"].items() if v is not None}
    attacks = _attacks(f)
    if attacks:
        info["attacks"] = attacks
    if f.get("alert_ids"):
        info["related_events_count"] = len(f["alert_ids"])
    if f.get("link"):
        info["src_url"] = f["link"]
    doc: dict[str, Any] = {
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "time": _ms(f["ts"]),
        "severity_id": OCSF_SEVERITY[sev],
        "severity": sev.capitalize() if sev != "info" else "Informational",
        "status_id": 1,
        "status": "New",
        "message": f["title"][:1000],
        "confidence_score": max(0, min(100, round(float(f.get("score") or 0) * 100))),
        "metadata": {
            "version": "1.5.0",
            "uid": f["id"],
            "product": {"name": PRODUCT, "vendor_name": VENDOR, "version": VERSION},
            "tenant_uid": f.get("org"),
            "labels": [f["event"]],
        },
        "finding_info": {k: v for k, v in info.items() if v is not None},
    }
    doc["metadata"] = {k: v for k, v in doc["metadata"].items() if v is not None}
    resources = [
        {
            "uid": a["id"],
            "name": a["name"],
            "type": "asset",
            "criticality": a["criticality"],
            **({"ip": a["ip"]} if a.get("ip") else {}),
            **({"group": {"name": a["zone"]}} if a.get("zone") else {}),
        }
        for a in f.get("assets", ())
    ]
    if resources:
        doc["resources"] = resources
    hosts, ips = _hosts(f), _ips(f)
    if hosts or ips:
        dev: dict[str, Any] = {"type_id": 0, "type": "Unknown"}
        if hosts:
            dev["hostname"] = dev["name"] = hosts[0]
        if ips:
            dev["ip"] = ips[0]
        doc["device"] = dev
    impact = _safety(f)
    if impact is not None:
        iid, label = next((i, n) for lim, i, n in OCSF_IMPACT if impact >= lim)
        doc["impact_id"], doc["impact"], doc["impact_score"] = iid, label, round(impact * 100)
    return doc


def validate_ocsf(doc: Mapping[str, Any]) -> None:
    """Validate against the OCSF 1.5.0 schema (ocsf-emitter's models, generated from OCSF's JSON Schema).

    Besides the library's checks, keys the class does not define are refused (the models allow extras).
    """
    from ocsf_emitter import InvalidFindingError, validate
    from ocsf_emitter._models import DetectionFinding
    from pydantic import ValidationError

    unknown = sorted(set(doc) - set(DetectionFinding.model_fields))
    if unknown:
        raise FormatError(f"OCSF finding {doc.get('metadata', {}).get('uid')}: unknown keys {unknown}")
    uid = doc.get("metadata", {}).get("uid")
    try:
        validate(DetectionFinding.model_validate(dict(doc)))
    except ValidationError as exc:  # field paths and messages only: never the values
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise FormatError(f"OCSF finding {uid}: {where}") from None
    except InvalidFindingError as exc:
        raise FormatError(f"OCSF finding {uid}: {'; '.join(map(str, exc.field_errors[:5]))}") from None


# ---- ECS (Elastic Common Schema 8.x) --------------------------------------------------------------------
def to_ecs(f: Mapping[str, Any]) -> dict[str, Any]:
    """The finding as an ECS document for Elasticsearch/OpenSearch (``event.kind: alert``)."""
    sev = f["severity"]
    doc: dict[str, Any] = {
        "@timestamp": f["ts"],
        "ecs": {"version": "8.11.0"},
        "message": f["title"],
        "event": {
            "kind": "alert",
            "category": ["intrusion_detection"],
            "type": ["info"],
            "id": f["id"],
            "dataset": f"healthsec.{f['event']}",
            "module": "healthsec",
            "provider": f.get("detector") or "correlator",
            "severity": OCSF_SEVERITY[sev],
            "risk_score": round(float(f.get("score") or 0) * 100, 2),
            "reason": f.get("explanation"),
        },
        "observer": {"vendor": VENDOR, "product": PRODUCT, "version": VERSION, "type": "ids"},
        "log": {"level": sev},
        "rule": {
            "name": f["title"][:1024],
            "id": f.get("detector") or "correlator",
            "version": f.get("detector_version"),
            "category": ",".join(f.get("tactics", ())) or None,
        },
        "labels": {"healthsec_kind": f["event"], **({"organization": f["org"]} if f.get("org") else {})},
    }
    if f.get("first_seen"):
        doc["event"]["start"], doc["event"]["end"] = f["first_seen"], f["last_seen"]
    if f.get("link"):
        doc["event"]["url"] = f["link"]
    if f.get("techniques"):
        names = f.get("technique_names", {})
        tactic_ids = f.get("tactic_ids", {})
        doc["threat"] = {
            "framework": "MITRE ATT&CK",
            "technique": {
                "id": [t.split(".")[0] for t in f["techniques"]],
                "name": [names.get(t.split(".")[0], t) for t in f["techniques"]],
            },
        }
        subs = [t for t in f["techniques"] if "." in t]
        if subs:
            doc["threat"]["technique"]["subtechnique"] = {"id": subs}
        if f.get("tactics"):
            doc["threat"]["tactic"] = {"name": list(f["tactics"])}
            ids = [tactic_ids[t] for t in f["tactics"] if t in tactic_ids]
            if ids:
                doc["threat"]["tactic"]["id"] = ids
    host: dict[str, Any] = {}
    hosts, ips = _hosts(f), _ips(f)
    assets = f.get("assets", ())
    if assets:
        host["name"] = assets[0]["name"]
        host["id"] = assets[0]["id"]
        host["ip"] = [a["ip"] for a in assets if a.get("ip")] or ips or None
    elif hosts or ips:
        host["name"] = hosts[0] if hosts else None
        host["ip"] = ips or None
    impact = _safety(f)
    if impact is not None:
        level = next(n for lim, n in ECS_RISK if impact >= lim)
        host["risk"] = {"static_level": level, "static_score_norm": round(impact * 100, 2)}
    host = {k: v for k, v in host.items() if v is not None}
    if host:
        doc["host"] = host
    users = _users(f)
    if users:
        doc["user"] = {"name": users[0]}
    doc["event"] = {k: v for k, v in doc["event"].items() if v is not None}
    doc["rule"] = {k: v for k, v in doc["rule"].items() if v is not None}
    return doc


ECS_SCHEMA: dict[str, Any] = {
    # The subset of ECS 8.11 fields the writer uses, with the types and allowed values ECS defines for them
    "type": "object",
    "required": ["@timestamp", "ecs", "event", "message"],
    "additionalProperties": False,
    "properties": {
        "@timestamp": {"type": "string", "format": "date-time"},
        "ecs": {"type": "object", "properties": {"version": {"type": "string"}}, "required": ["version"]},
        "message": {"type": "string"},
        "event": {
            "type": "object",
            "additionalProperties": False,
            "required": ["kind", "category", "type"],
            "properties": {
                "kind": {
                    "enum": ["alert", "enrichment", "event", "metric", "state", "pipeline_error", "signal"]
                },
                "category": {"type": "array", "items": {"enum": ["intrusion_detection", "network", "host"]}},
                "type": {"type": "array", "items": {"enum": ["info", "indicator", "denied", "allowed"]}},
                "id": {"type": "string"},
                "dataset": {"type": "string"},
                "module": {"type": "string"},
                "provider": {"type": "string"},
                "severity": {"type": "integer"},
                "risk_score": {"type": "number"},
                "reason": {"type": "string"},
                "start": {"type": "string"},
                "end": {"type": "string"},
                "url": {"type": "string"},
            },
        },
        "observer": {"type": "object"},
        "log": {"type": "object", "properties": {"level": {"type": "string"}}},
        "rule": {
            "type": "object",
            "additionalProperties": False,
            "properties": {k: {"type": "string"} for k in ("name", "id", "version", "category")},
        },
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "threat": {
            "type": "object",
            "required": ["framework"],
            "properties": {
                "framework": {"const": "MITRE ATT&CK"},
                "technique": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "array", "items": {"type": "string", "pattern": r"^T\d{4}$"}},
                        "name": {"type": "array", "items": {"type": "string"}},
                        "subtechnique": {
                            "type": "object",
                            "properties": {"id": {"type": "array", "items": {"pattern": r"^T\d{4}\.\d{3}$"}}},
                        },
                    },
                },
                "tactic": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "array", "items": {"type": "string"}},
                        "id": {"type": "array", "items": {"type": "string", "pattern": r"^TA\d{4}$"}},
                    },
                },
            },
        },
        "host": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "id": {"type": "string"},
                "ip": {"type": "array", "items": {"type": "string"}},
                "risk": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "static_level": {"type": "string"},
                        "static_score_norm": {"type": "number", "minimum": 0, "maximum": 100},
                    },
                },
            },
        },
        "user": {"type": "object", "properties": {"name": {"type": "string"}}},
    },
}


@cache
def _validator(name: str) -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(ECS_SCHEMA if name == "ecs" else HEC_SCHEMA)


def validate_ecs(doc: Mapping[str, Any]) -> None:
    errors = sorted(_validator("ecs").iter_errors(dict(doc)), key=str)
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path)
        raise FormatError(f"ECS document {doc.get('event', {}).get('id')}: {where}: {errors[0].message}")


# ---- CEF (ArcSight Common Event Format) ----------------------------------------------------------------
def to_cef(f: Mapping[str, Any]) -> str:
    """One CEF:0 line; every extension key is checked against the ArcSight dictionary (cefevent, strict)."""
    from cefevent import CEFEvent

    ev = CEFEvent(strict=True)
    fields: list[tuple[str, Any]] = [
        ("deviceVendor", VENDOR),
        ("deviceProduct", PRODUCT),
        ("deviceVersion", VERSION),
        ("signatureId", f.get("detector") or "correlator"),
        ("name", f["title"][:512]),
        ("severity", CEF_SEVERITY[f["severity"]]),
        ("rt", _ms(f["ts"])),
        ("externalId", f["id"]),
        ("cat", f"healthsec/{f['event']}"),
        ("msg", (f.get("explanation") or "")[:1023]),
    ]
    hosts, ips, users = _hosts(f), _ips(f), _users(f)
    if ips:
        fields.append(("src", ips[0]))
    if hosts:
        fields.append(("shost", hosts[0]))
    if users:
        fields.append(("suser", users[0]))
    if f.get("techniques"):
        fields += [("cs1Label", "mitreAttackTechniqueIds"), ("cs1", ",".join(f["techniques"])[:4000])]
    if f.get("tactics"):
        fields += [("cs2Label", "mitreAttackTactics"), ("cs2", ",".join(f["tactics"])[:4000])]
    assets = f.get("assets", ())
    if assets:
        fields += [("dhost", assets[0]["name"]), ("cs3Label", "assetCriticality")]
        fields += [("cs3", assets[0]["criticality"])]
        if assets[0].get("ip"):
            fields.append(("dst", assets[0]["ip"]))
    impact = _safety(f)
    if impact is not None:
        fields += [("cfp1Label", "patientSafetyImpact"), ("cfp1", round(impact, 3))]
    fields += [("cfp2Label", "score"), ("cfp2", round(float(f.get("score") or 0), 4))]
    for name, value in fields:
        try:
            ev.set_field(name, value)
        except ValueError as exc:
            raise FormatError(f"CEF record {f['id']}: field {name}: {str(exc).splitlines()[0]}") from None
    return str(ev.build_cef())


# ---- RFC 5424 syslog -------------------------------------------------------------------------------------
def _sd_value(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def to_rfc5424(f: Mapping[str, Any], body: str, *, hostname: str = "-", facility: int = 10) -> str:
    """One RFC 5424 message (facility 10, authpriv, by default) around ``body`` (a CEF line or JSON).

    Structured data ``[healthsec@32473 ...]`` carries id, kind, severity, ATT&CK ids and the patient-safety
    impact, so a receiver can filter without parsing the body.
    """
    pri = facility * 8 + SYSLOG_SEVERITY[f["severity"]]
    ts = datetime.fromisoformat(f["ts"]).isoformat().replace("+00:00", "Z")
    params = [("id", f["id"]), ("kind", f["event"]), ("severity", f["severity"])]
    params += [("technique", t) for t in f.get("techniques", ())]
    params += [("tactic", t) for t in f.get("tactics", ())]
    if f.get("assets"):
        params += [("asset", f["assets"][0]["name"]), ("criticality", f["assets"][0]["criticality"])]
    impact = _safety(f)
    if impact is not None:
        params.append(("patientSafetyImpact", f"{impact:.3f}"))
    sd = "[" + SD_ID + "".join(f' {k}="{_sd_value(v)}"' for k, v in params) + "]"
    host = hostname if hostname and " " not in hostname else "-"
    return f"<{pri}>1 {ts} {host[:255]} healthsec - {f['event']} {sd} \ufeff{body}"


# ---- Splunk HTTP Event Collector ---------------------------------------------------------------------------
def to_hec(
    f: Mapping[str, Any], event: Mapping[str, Any] | None = None, *, index: str | None = None
) -> dict[str, Any]:
    """A HEC event: ``event`` (default: the ECS document) and indexed ``fields`` named as Splunk CIM does."""
    fields: dict[str, Any] = {
        "signature": f["title"][:512],
        "severity": f["severity"] if f["severity"] != "info" else "informational",
        "vendor_product": "healthsec",
        "type": f["event"],
        "id": f["id"],
    }
    if f.get("techniques"):
        fields["mitre_technique_id"] = list(f["techniques"])
    if f.get("assets"):
        fields["dest"] = f["assets"][0]["name"]
        fields["dest_priority"] = f["assets"][0]["criticality"]
    impact = _safety(f)
    if impact is not None:
        fields["patient_safety_impact"] = f"{impact:.3f}"
    out: dict[str, Any] = {
        "time": _ms(f["ts"]) / 1000,
        "source": "healthsec",
        "sourcetype": f"healthsec:{f['event']}",
        "event": dict(event) if event is not None else to_ecs(f),
        "fields": fields,
    }
    hosts = _hosts(f)
    if hosts:
        out["host"] = hosts[0]
    if index:
        out["index"] = index
    return out


HEC_SCHEMA: dict[str, Any] = {
    # Splunk's documented /services/collector/event envelope
    "type": "object",
    "required": ["event"],
    "additionalProperties": False,
    "properties": {
        "time": {"type": "number"},
        "host": {"type": "string"},
        "source": {"type": "string"},
        "sourcetype": {"type": "string"},
        "index": {"type": "string"},
        "event": {"type": ["object", "string"]},
        "fields": {
            "type": "object",
            "additionalProperties": {
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
            },
        },
    },
}


def validate_hec(doc: Mapping[str, Any]) -> None:
    errors = list(_validator("hec").iter_errors(dict(doc)))
    if errors:
        raise FormatError(f"HEC event {doc.get('fields', {}).get('id')}: {errors[0].message}")


FORMATS = ("ocsf", "ecs", "cef")


def document(f: Mapping[str, Any], fmt: str) -> dict[str, Any]:
    """The finding as a validated JSON document (``ocsf`` or ``ecs``)."""
    if fmt == "ocsf":
        doc = to_ocsf(f)
        validate_ocsf(doc)
        return doc
    if fmt == "ecs":
        doc = to_ecs(f)
        validate_ecs(doc)
        return doc
    raise FormatError(f"format {fmt!r} is not a JSON document; expected ocsf or ecs")


def render(f: Mapping[str, Any], fmt: str) -> str:
    """One finding in one format as text: a JSON line (ocsf, ecs) or a CEF line (cef)."""
    if fmt == "cef":
        return to_cef(f)
    if fmt in ("ocsf", "ecs"):
        return orjson.dumps(document(f, fmt)).decode()
    raise FormatError(f"unknown output format {fmt!r}; expected one of {', '.join(FORMATS)}")
