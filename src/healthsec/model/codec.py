"""Plain-dict codec for model objects (JSON-ready), used by the store, the bus and exports."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from healthsec.model.alerts import Alert, Incident, IncidentStatus
from healthsec.model.assets import Asset, Criticality
from healthsec.model.common import Entity, EntityKind, EntityRole, Provenance, Severity, parse_utc
from healthsec.model.events import EVENT_TYPES, Event, EventBase

T = TypeVar("T")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Entity):
        return {"kind": value.kind.value, "value": value.value, "role": value.role.value}
    if isinstance(value, Provenance):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, (Severity, Criticality)):
        return value.name.lower()
    if isinstance(value, IncidentStatus):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_dict(obj: EventBase | Alert | Incident | Asset) -> dict[str, Any]:
    """Serialise a model object; events carry their ``kind`` so they can be read back."""
    out = {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, EventBase):
        out["kind"] = obj.kind
    return out


def _entity(d: Mapping[str, Any]) -> Entity:
    return Entity(EntityKind(d["kind"]), str(d["value"]), EntityRole(d.get("role", "actor")))


def _provenance(d: Mapping[str, Any] | None) -> Provenance | None:
    if d is None:
        return None
    ingested = d.get("ingested_at")
    return Provenance(
        source=d["source"],
        locator=d.get("locator"),
        record=d.get("record"),
        sensor=d.get("sensor"),
        ingested_at=parse_utc(ingested) if ingested else None,
    )


@functools.cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def event_from_dict(d: Mapping[str, Any]) -> Event:
    """Rebuild an event from :func:`to_dict` output; unknown kinds and fields are errors."""
    kind = d.get("kind")
    cls = EVENT_TYPES.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}")
    names = _field_names(cls)
    extra = d.keys() - names - {"kind"}
    if extra:
        raise ValueError(f"unknown fields for {kind} event: {sorted(extra)}")
    kwargs = {k: v for k, v in d.items() if k in names}
    kwargs["ts"] = parse_utc(d["ts"]) if isinstance(d["ts"], str) else d["ts"]
    kwargs["provenance"] = _provenance(d.get("provenance"))
    return cls(**kwargs)  # type: ignore[return-value]


def alert_from_dict(d: Mapping[str, Any]) -> Alert:
    return Alert(
        id=d["id"],
        ts=parse_utc(d["ts"]),
        detector=d["detector"],
        detector_version=d["detector_version"],
        title=d["title"],
        score=float(d["score"]),
        severity=Severity.parse(d["severity"]),
        explanation=d["explanation"],
        evidence=tuple(d.get("evidence", ())),
        entities=tuple(_entity(e) for e in d.get("entities", ())),
        techniques=tuple(d.get("techniques", ())),
        tactics=tuple(d.get("tactics", ())),
        features=dict(d.get("features", {})),
        schema_version=int(d.get("schema_version", 1)),
    )


def incident_from_dict(d: Mapping[str, Any]) -> Incident:
    return Incident(
        id=d["id"],
        title=d["title"],
        first_seen=parse_utc(d["first_seen"]),
        last_seen=parse_utc(d["last_seen"]),
        severity=Severity.parse(d["severity"]),
        score=float(d["score"]),
        alert_ids=tuple(d["alert_ids"]),
        entities=tuple(_entity(e) for e in d.get("entities", ())),
        techniques=tuple(d.get("techniques", ())),
        tactics=tuple(d.get("tactics", ())),
        status=IncidentStatus(d.get("status", "open")),
        membership={str(k): float(v) for k, v in d.get("membership", {}).items()},
        summary=d.get("summary", ""),
        schema_version=int(d.get("schema_version", 1)),
    )


def asset_from_dict(d: Mapping[str, Any]) -> Asset:
    crit = d.get("criticality", "business")
    return Asset(
        id=d["id"],
        name=d["name"],
        role=d["role"],
        zone=d["zone"],
        ip=d.get("ip"),
        mac=d.get("mac"),
        owner=d.get("owner"),
        criticality=Criticality[crit.upper()] if isinstance(crit, str) else Criticality(crit),
        device_type=d.get("device_type"),
        vendor=d.get("vendor"),
        product=d.get("product"),
        version=d.get("version"),
        cpe=d.get("cpe"),
        purl=d.get("purl"),
        schema_version=int(d.get("schema_version", 1)),
    )
