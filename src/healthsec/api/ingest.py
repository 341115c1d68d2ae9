"""POST /api/v1/events: validate a batch of events and hand it to the bus (in-process or NATS JetStream)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from healthsec.api.auth import ERROR_RESPONSES, Sensor
from healthsec.api.security import ONE_LINE, TEXT
from healthsec.bus.envelope import EventBatch, encode_batch
from healthsec.bus.metrics import ServiceMetrics
from healthsec.model import Event, Provenance
from healthsec.model.events import EVENT_TYPES
from healthsec.model.limits import EVENT_LIMITS, INT_MAX, INT_MIN, event_problems
from healthsec.pipeline import Detection

MESSAGE_EVENTS = 500  # events per bus message: stays well under NATS's 1 MB default payload limit
_ADAPTERS: dict[str, TypeAdapter[Any]] = {kind: TypeAdapter(cls) for kind, cls in EVENT_TYPES.items()}
_FIELDS: dict[str, frozenset[str]] = {
    kind: frozenset(f.name for f in dataclasses.fields(cls)) for kind, cls in EVENT_TYPES.items()
}
_PROVENANCE_FIELDS = frozenset(f.name for f in dataclasses.fields(Provenance))


def _integer_names(schema: Mapping[str, Any]) -> frozenset[str]:
    props: Mapping[str, Any] = schema.get("properties", {})
    return frozenset(
        name
        for name, prop in props.items()
        if prop.get("type") == "integer" or any(v.get("type") == "integer" for v in prop.get("anyOf", ()))
    )


#: integer fields per kind (and of the provenance): JSON Schema counts 5.0 as an integer, strict mode not
_INTEGERS = {kind: _integer_names(a.json_schema()) for kind, a in _ADAPTERS.items()}
_PROVENANCE_INTEGERS = _integer_names(TypeAdapter(Provenance).json_schema())


def _whole(values: Mapping[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """``values`` with each integer field given as a whole float (5.0) turned into the integer 5; a float at
    or beyond 2**63 stays a float (refused): orjson reads -(2**63)-1 as a float that rounds to -(2**63)."""
    return {
        k: int(v) if k in names and isinstance(v, float) and v.is_integer() and abs(v) < 2.0**63 else v
        for k, v in values.items()
    }


class IngestSink(Protocol):
    """Where validated events go: the in-process pipeline or the NATS stream."""

    async def submit(self, org: str, bodies: Sequence[Mapping[str, Any]], events: Sequence[Event]) -> int: ...


@dataclass
class MemorySink:
    """Single machine: the batch is stored and the engine advanced before the request returns.

    The last open hour of event time is detected by :meth:`flush`, which the service calls when no
    events arrived for ``detection_idle_s`` seconds.
    """

    detection: Detection
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_event: float = 0.0

    def deliver(self, org: str, events: Sequence[Event], bodies: Sequence[Mapping[str, Any]] | None) -> int:
        self.detection.accept(org, events, [dict(b) for b in bodies] if bodies is not None else None)
        self.detection.tick()
        return len(events)

    async def submit(self, org: str, bodies: Sequence[Mapping[str, Any]], events: Sequence[Event]) -> int:
        async with self._lock:  # one batch at a time: the engine is advanced in order
            self.last_event = time.monotonic()
            return await asyncio.to_thread(self.deliver, org, list(events), list(bodies))

    async def flush(self) -> int:
        async with self._lock:
            return await asyncio.to_thread(self.detection.tick, final=True)


@dataclass
class NatsSink:
    """Scale-out: publish to the durable JetStream stream (acked by the broker) for the workers."""

    js: Any
    cfg: Any
    watch: Any = None  # a DependencyWatch: one log line when the broker is lost, one when it is back

    async def submit(self, org: str, bodies: Sequence[Mapping[str, Any]], events: Sequence[Event]) -> int:
        from healthsec.bus.nats import publish

        for start in range(0, len(bodies), MESSAGE_EVENTS):
            batch = EventBatch(org=org, events=list(bodies[start : start + MESSAGE_EVENTS]))
            await publish(self.js, self.cfg, encode_batch(batch), batch.msg_id, watch=self.watch)
        return len(bodies)


def validate_event(index: int, raw: Any) -> tuple[list[dict[str, Any]], Event | None]:
    """Type-check one event against its model class; return (errors, event)."""
    loc: list[str | int] = ["body", "events", index]
    if not isinstance(raw, dict):
        return [{"loc": loc, "msg": "an event must be a JSON object", "type": "object_type"}], None
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in _ADAPTERS:
        msg = f"unknown event kind; one of {', '.join(sorted(_ADAPTERS))}"  # the value is never echoed
        return [{"loc": [*loc, "kind"], "msg": msg, "type": "enum"}], None
    extra = [[name] for name in sorted(set(raw) - _FIELDS[kind] - {"kind"})]
    provenance = raw.get("provenance")
    if isinstance(provenance, dict):  # pydantic ignores unknown keys of a nested dataclass: refuse them here
        extra += [["provenance", name] for name in sorted(set(provenance) - _PROVENANCE_FIELDS)]
    if extra:
        return [
            {"loc": [*loc, *where], "msg": f"unknown field for a {kind} event", "type": "extra_forbidden"}
            for where in extra
        ], None
    clean = _whole({k: v for k, v in raw.items() if k != "kind"}, _INTEGERS[kind])
    if isinstance(provenance, dict):
        clean["provenance"] = _whole(provenance, _PROVENANCE_INTEGERS)
    try:
        body = orjson.dumps(clean)
    except TypeError:  # only for a caller's Python values: JSON read by orjson always fits 64 bits
        return [{"loc": loc, "msg": "integer out of the 64-bit range", "type": "value_error"}], None
    try:  # strict JSON mode: `false` is no integer and "5" no number, as the published schema says
        event = _ADAPTERS[kind].validate_json(body, strict=True)
    except ValidationError as exc:
        return [
            {"loc": [*loc, *err["loc"]], "msg": err["msg"], "type": err["type"]} for err in exc.errors()
        ], None
    problems = event_problems(event, body)  # the record as just encoded: scanned, not re-encoded
    if problems:  # declared limits (id <= 64, source <= 128, no control characters): refused per record
        return [{"loc": [*loc, *where], "msg": why, "type": "value_error"} for where, why in problems], None
    return [], event


def validate_batch(
    raw_events: Sequence[Any],
) -> tuple[list[dict[str, Any]], list[Event], list[dict[str, Any]]]:
    """Validate every event; return (errors naming each bad record, events, their bus bodies)."""
    errors: list[dict[str, Any]] = []
    events: list[Event] = []
    for index, raw in enumerate(raw_events):
        errs, event = validate_event(index, raw)
        if errs:
            errors.extend(errs)
        elif event is not None:
            events.append(event)
    return errors, events, ([] if errors else [event_body(e) for e in events])


def event_body(event: Event) -> dict[str, Any]:
    """The bus form of an event: pydantic's JSON dump of the dataclass plus ``kind`` (what to_dict gives,
    at a sixth of the cost; timestamps end in "Z", which parse_utc reads back)."""
    return {**_ADAPTERS[event.kind].dump_python(event, mode="json"), "kind": event.kind}


def _problem(code: int, errors: list[dict[str, Any]]) -> HTTPException:
    return HTTPException(code, detail=errors[:50])


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) more than ``limit`` bytes even without a Content-Length."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _problem(
                413, [{"loc": ["body"], "msg": f"body larger than {limit} bytes", "type": "too_large"}]
            )
        chunks.append(chunk)
    return b"".join(chunks)


#: any JSON value whose strings and keys hold no control character but tab, newline and carriage return
#: (what model.limits.event_problems enforces in an event's free-form ``fields``)
TEXT_JSON: dict[str, Any] = {
    "anyOf": [
        {"type": "null"},
        {"type": "boolean"},
        {"type": "number"},
        {"type": "string", "pattern": TEXT},
        {"type": "array", "items": {"$ref": "#/components/schemas/TextJson"}},
        {
            "type": "object",
            "propertyNames": {"pattern": TEXT},
            "additionalProperties": {"$ref": "#/components/schemas/TextJson"},
        },
    ]
}


def _int64(node: Any) -> None:
    """Every integer of an event schema in place: the signed 64-bit range model.limits enforces."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            node.setdefault("minimum", INT_MIN)
            node.setdefault("maximum", INT_MAX)
        for value in node.values():
            _int64(value)
    elif isinstance(node, list):
        for value in node:
            _int64(value)


def _text_keys(node: Any) -> None:
    """Free-form objects (``fields``, ``features``, ``metrics``) in place: keys without control characters,
    and any value of ``fields`` as :data:`TEXT_JSON`."""
    if isinstance(node, dict):
        if node.get("type") == "object" and node.get("additionalProperties", True) is not False:
            if node.get("additionalProperties", True) is True:
                node["additionalProperties"] = {"$ref": "#/components/schemas/TextJson"}
            node.setdefault("propertyNames", {"pattern": TEXT})
        for value in node.values():
            _text_keys(value)
    elif isinstance(node, list):
        for value in node:
            _text_keys(value)


def _event_components() -> dict[str, Any]:
    """One published schema per event kind (``FlowEvent``, ``LogEvent``, ...) from the very classes the
    route validates with, plus the declared limits and the ``kind`` that selects it; shared definitions
    (``Provenance``) alongside."""
    out: dict[str, Any] = {}
    for kind, cls in EVENT_TYPES.items():
        schema = _ADAPTERS[kind].json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        props = schema.setdefault("properties", {})
        props["kind"] = {"type": "string", "enum": [kind]}
        props.pop("schema_version", None)  # set by the server
        for name, limit in EVENT_LIMITS.items():
            props[name] = {**props.get(name, {}), "type": "string", "maxLength": limit, "pattern": ONE_LINE}
        props["id"]["minLength"] = 1
        schema["required"] = sorted({*schema.get("required", ()), "kind"} - {"schema_version"})
        schema["additionalProperties"] = False
        schema["title"] = f"{cls.__name__}Event"
        out[f"{cls.__name__}Event"] = schema
    out["Provenance"]["additionalProperties"] = False  # enforced in validate_event
    _text_keys(out)
    _int64(out)
    out["TextJson"] = TEXT_JSON
    return out


EVENT_COMPONENTS = _event_components()
EVENT_SCHEMA: dict[str, Any] = {
    "oneOf": [{"$ref": f"#/components/schemas/{cls.__name__}Event"} for cls in EVENT_TYPES.values()],
    "description": "An event as healthsec.model.codec.to_dict writes it; 'kind' selects the fields.",
}

router = APIRouter(prefix="/api/v1", tags=["ingest"], responses=ERROR_RESPONSES)


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ingest a batch of events (flows, logs, readings, record accesses, clinical messages)",
    responses={
        202: {"description": "Accepted: stored (in-process bus) or durably queued (NATS)"},
        413: {"description": "Body too large or too many events"},
        503: {
            "description": "The database or the bus is unavailable (the bus after `bus_publish_deadline_s` "
            "of retries); nothing of the batch is lost by retrying after `Retry-After` seconds"
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["events"],
                        "properties": {"events": {"type": "array", "items": EVENT_SCHEMA, "maxItems": 10000}},
                        "additionalProperties": False,
                    }
                }
            },
        }
    },
)
async def ingest_events(request: Request, principal: Sensor) -> JSONResponse:
    services = request.app.state.services
    metrics: ServiceMetrics = services.metrics
    body = await read_body(request, services.settings.max_body_bytes)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _problem(
            422, [{"loc": ["body"], "msg": f"invalid JSON: {exc}", "type": "json_invalid"}]
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise _problem(
            422,
            [
                {
                    "loc": ["body", "events"],
                    "msg": "expected an object with an 'events' list",
                    "type": "missing",
                }
            ],
        )
    extra = sorted(set(payload) - {"events"})
    if extra:
        raise _problem(
            422, [{"loc": ["body", k], "msg": "unknown field", "type": "extra_forbidden"} for k in extra]
        )
    raw_events: list[Any] = payload["events"]
    limit = services.settings.max_batch_events
    if len(raw_events) > limit:
        raise _problem(
            413,
            [
                {
                    "loc": ["body", "events"],
                    "msg": f"more than {limit} events in one request",
                    "type": "too_long",
                }
            ],
        )
    # validation is CPU work: off the event loop, so reads (the alert list) are served meanwhile
    errors, events, bodies = await asyncio.to_thread(validate_batch, raw_events)
    if errors:
        metrics.errors.labels("api", "invalid_event").inc(len(errors))
        raise _problem(422, errors)
    try:
        accepted = await services.sink.submit(principal.org, bodies, events)
    except Exception:
        # the bus or the database is away (after the publish deadline): 503 + Retry-After, one log line
        # per outage (api/unavailable.py); anything else is a bug and answers 500
        metrics.errors.labels("api", "bus").inc()
        raise
    metrics.events_in.labels("api", principal.role.value).inc(accepted)
    await asyncio.to_thread(
        services.store.for_org(principal.org).audit.record,
        principal.actor,
        "events.ingest",
        None,
        count=accepted,
    )
    if services.deps is not None:
        services.deps.db.ok()
    return JSONResponse({"accepted": accepted, "queued": services.settings.bus == "nats"}, status_code=202)
