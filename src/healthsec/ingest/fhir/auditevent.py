"""FHIR R4 AuditEvent -> RecordAccess: validation with fhir.resources and an NDJSON file source."""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import orjson
from fhir.resources.R4B.auditevent import AuditEvent
from pydantic import ValidationError

from healthsec.model import Event, ParseError, Provenance, RecordAccess, ensure_utc, stable_id
from healthsec.model.events import AccessAction

SOURCE = "fhir-audit"

# R4 AuditEvent.action (C/R/U/D/E) plus the restful-interaction subtype decide what the user did.
_SUBTYPE_ACTIONS: dict[str, AccessAction] = {
    "read": "read",
    "vread": "read",
    "history-instance": "read",
    "history-type": "search",
    "search-type": "search",
    "search-system": "search",
    "search": "search",
    "export": "export",
    "$export": "export",
    "create": "write",
    "update": "write",
    "patch": "write",
    "delete": "delete",
}
_ACTION_CODES: dict[str, AccessAction] = {"C": "write", "R": "read", "U": "write", "D": "delete", "E": "read"}
# DICOM audit event type 110106 "Export" and 110110 "Patient Record" are the common type codes.
_EXPORT_TYPES = frozenset({"110106"})
_OUTCOMES = {"0": "success", "4": "minor-failure", "8": "serious-failure", "12": "major-failure"}
_COUNT_DETAIL_TYPES = frozenset({"count", "records", "resultcount", "total"})


class AuditEventError(ValueError):
    """An AuditEvent that is valid FHIR but says nothing we can use (no user, no time)."""


def _ref_parts(reference: str | None) -> tuple[str | None, str | None]:
    if not reference or "/" not in reference:
        return None, None
    rtype, _, rid = reference.rpartition("/")
    rtype = rtype.rsplit("/", 1)[-1]  # absolute URLs: keep the type segment
    return rtype or None, rid or None


def _user_key(agent: Any) -> str | None:
    who = agent.who
    if who is not None:
        if who.reference:
            return str(who.reference)
        if who.identifier is not None and who.identifier.value:
            system = who.identifier.system or ""
            return f"{system}|{who.identifier.value}" if system else str(who.identifier.value)
        if who.display:
            return str(who.display)
    if agent.altId:
        return str(agent.altId)
    return None


def _role(agent: Any) -> str | None:
    for concept in list(agent.role or []) + ([agent.type] if agent.type else []):
        for coding in concept.coding or []:
            if coding.code:
                return str(coding.code)
        if concept.text:
            return str(concept.text)
    return None


def _action(ae: AuditEvent) -> AccessAction:
    for coding in ae.subtype or []:
        code = (coding.code or "").lstrip()
        if code in _SUBTYPE_ACTIONS:
            return _SUBTYPE_ACTIONS[code]
    if ae.type is not None and ae.type.code in _EXPORT_TYPES:
        return "export"
    for ent in ae.entity or []:
        query = ent.query
        if query:
            try:
                text = _b64(query)
            except ValueError:
                text = ""
            if "$export" in text:
                return "export"
    return _ACTION_CODES.get(ae.action or "R", "read")


def _b64(value: bytes | str) -> str:
    raw = value if isinstance(value, bytes) else value.encode()
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8", "replace")
    except Exception as exc:
        raise ValueError("entity.query is not base64") from exc


def to_access(resource: Mapping[str, Any], *, locator: str, record: int | None = None) -> RecordAccess:
    """Validate one AuditEvent resource (dict) and map it; raises ``ValueError`` naming the problem."""
    if resource.get("resourceType") != "AuditEvent":
        raise AuditEventError(f"resourceType is {resource.get('resourceType')!r}, expected 'AuditEvent'")
    try:
        ae = AuditEvent.model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "resource"
        raise AuditEventError(
            f"invalid AuditEvent ({exc.error_count()} error(s)); {where}: {first['msg']}"
        ) from exc
    agents = list(ae.agent or [])
    requestor = next((a for a in agents if a.requestor), agents[0] if agents else None)
    user = _user_key(requestor) if requestor is not None else None
    if not user:
        raise AuditEventError("no agent identifies the user (agent.who / altId)")
    patient_id: str | None = None
    resource_type: str | None = None
    records = 0
    for ent in ae.entity or []:
        rtype, rid = _ref_parts(ent.what.reference if ent.what else None)
        if rtype == "Patient" and patient_id is None:
            patient_id = rid
        elif rtype and resource_type is None:
            resource_type = rtype
        if rtype is not None and rtype != "Patient":
            records += 1
        for detail in ent.detail or []:
            if (detail.type or "").replace("_", "").casefold() in _COUNT_DETAIL_TYPES:
                value = detail.valueString or (
                    _b64(detail.valueBase64Binary) if detail.valueBase64Binary else ""
                )
                if value.strip().isdigit():
                    records = max(records, int(value))
    if resource_type is None and patient_id is not None:
        resource_type = "Patient"
    workstation = None
    if requestor is not None and requestor.network is not None and requestor.network.address:
        workstation = str(requestor.network.address)
    if ae.recorded is None:
        raise AuditEventError("AuditEvent.recorded is missing")
    ident = ae.id or hashlib.sha256(orjson.dumps(dict(resource), option=orjson.OPT_SORT_KEYS)).hexdigest()
    return RecordAccess(
        id=stable_id("acc", SOURCE, ident),
        ts=ensure_utc(ae.recorded),
        source=SOURCE,
        provenance=Provenance(source=SOURCE, locator=locator, record=record),
        user=user,
        role=_role(requestor) if requestor is not None else None,
        patient_id=patient_id,
        action=_action(ae),
        resource_type=resource_type,
        records=max(records, 1),
        workstation=workstation,
        outcome=_OUTCOMES.get(ae.outcome or "", ae.outcome),
    )


def parse_resource(obj: Any, *, locator: str, record: int | None) -> RecordAccess | ParseError:
    """Like :func:`to_access` but returns a :class:`ParseError` instead of raising."""
    if not isinstance(obj, Mapping):
        return ParseError(SOURCE, locator, "not a JSON object", record)
    try:
        return to_access(obj, locator=locator, record=record)
    except (ValueError, TypeError) as exc:
        return ParseError(SOURCE, locator, str(exc), record)


def iter_bundle_or_resource(obj: Any) -> Iterator[Any]:
    """A transaction/collection Bundle yields its entries' resources; anything else is itself."""
    if isinstance(obj, Mapping) and obj.get("resourceType") == "Bundle":
        for entry in obj.get("entry") or []:
            yield entry.get("resource") if isinstance(entry, Mapping) else entry
    else:
        yield obj


def _open(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


class AuditEventFileSource:
    """AuditEvents from NDJSON files (``.ndjson`` / ``.ndjson.gz``, one resource or Bundle per line) and
    from JSON files (``.json`` / ``.json.gz``: one resource or one Bundle, e.g. a FHIR search result).

    Each bad line becomes a :class:`ParseError` naming the file and line number (NDJSON) or the Bundle
    entry index (JSON).
    """

    name = SOURCE

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self.paths = [Path(p) for p in paths]

    def read(self) -> Iterator[Event | ParseError]:
        for path in self.paths:
            try:
                handle = _open(path)
            except OSError as exc:
                yield ParseError(SOURCE, str(path), f"cannot open: {exc.strerror or exc}")
                continue
            with handle:
                try:
                    if path.name.endswith((".json", ".json.gz")):
                        yield from self._document(path, handle)
                    else:
                        yield from self._lines(path, handle)
                except (OSError, EOFError, UnicodeDecodeError) as exc:
                    yield ParseError(SOURCE, str(path), f"file unreadable past this point: {exc}")

    @staticmethod
    def _document(path: Path, handle: TextIO) -> Iterator[Event | ParseError]:
        try:
            obj = orjson.loads(handle.read())
        except orjson.JSONDecodeError as exc:
            yield ParseError(SOURCE, str(path), f"not JSON ({exc.msg})")
            return
        for index, item in enumerate(iter_bundle_or_resource(obj)):
            yield parse_resource(item, locator=str(path), record=index)

    @staticmethod
    def _lines(path: Path, handle: TextIO) -> Iterator[Event | ParseError]:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield ParseError(SOURCE, str(path), f"not JSON ({exc.msg})", lineno)
                continue
            for item in iter_bundle_or_resource(obj):
                yield parse_resource(item, locator=str(path), record=lineno)
