"""Deterministic STIX 2.1 identifiers and timestamps for objects built as plain dicts."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import orjson

#: The STIX 2.1 namespace for deterministic SCO ids (STIX 2.1 section 2.9).
SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")
#: Our own namespace for SDO/SRO ids derived from healthsec's stable ids (same input, same STIX id).
HEALTHSEC_NAMESPACE = uuid.UUID("6d1b4f7e-2c9a-5b3e-8f41-0a7c9e2d5b18")

ID_RE = re.compile(
    r"^([a-z0-9][a-z0-9-]{1,248}[a-z0-9])--"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)


#: An identifier whose UUID may be written in upper-case hex (RFC 4122 reads hex case-insensitively).
_ANY_CASE_ID = re.compile(
    r"^([a-z0-9][a-z0-9-]{1,248}[a-z0-9])--"
    r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)


def normalise_id(value: str) -> str:
    """``type--UUID`` with the UUID in lower case (the form RFC 4122 says to output); else unchanged."""
    m = _ANY_CASE_ID.match(value)
    return f"{m.group(1)}--{m.group(2).lower()}" if m else value


def sdo_id(stix_type: str, *parts: object) -> str:
    """An SDO/SRO id that is the same every time for the same parts (re-export dedupes at partners)."""
    name = "\x1f".join(str(p) for p in (stix_type, *parts))
    return f"{stix_type}--{uuid.uuid5(HEALTHSEC_NAMESPACE, name)}"


def sco_id(stix_type: str, contributing: dict[str, object]) -> str:
    """The STIX 2.1 deterministic SCO id: UUIDv5 over the canonical JSON of the id-contributing properties."""
    canonical = orjson.dumps(contributing, option=orjson.OPT_SORT_KEYS).decode()
    return f"{stix_type}--{uuid.uuid5(SCO_NAMESPACE, canonical)}"


def stix_time(ts: datetime) -> str:
    """A STIX timestamp with millisecond precision, e.g. ``2026-01-01T00:00:00.000Z``."""
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
