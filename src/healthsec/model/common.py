"""Shared value types of the domain model: ids, UTC time, severity, entities, provenance."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum

SCHEMA_VERSION = 1


def stable_id(prefix: str, *parts: object) -> str:
    """A deterministic id: the same parts always give the same id (idempotent re-ingestion)."""
    digest = hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode()).hexdigest()
    return f"{prefix}-{digest[:24]}"


def ensure_utc(ts: datetime) -> datetime:
    """Return ``ts`` as an aware UTC datetime; naive values are refused, not guessed."""
    if ts.tzinfo is None or ts.tzinfo.utcoffset(ts) is None:
        raise ValueError(f"timestamp {ts.isoformat()} has no time zone; healthsec stores UTC only")
    return ts.astimezone(UTC)


def parse_utc(text: str) -> datetime:
    """Parse an ISO-8601 timestamp (``Z`` accepted) into aware UTC."""
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return ensure_utc(ts)


class Severity(IntEnum):
    """Alert and incident severity, ordered."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: str | int) -> Severity:
        if isinstance(value, int):
            return cls(value)
        return cls[value.strip().upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


class EntityKind(StrEnum):
    """Kinds of thing an alert can be about; correlation joins on these."""

    HOST = "host"
    IP = "ip"
    USER = "user"
    DEVICE = "device"
    PATIENT = "patient"
    AE_TITLE = "ae_title"
    APPLICATION = "application"
    FILE = "file"


ASSET_KINDS = frozenset({EntityKind.IP, EntityKind.HOST, EntityKind.DEVICE, EntityKind.AE_TITLE})
"""The entity kinds that can name an inventoried asset (risk per asset reads these)."""


class EntityRole(StrEnum):
    """Whether the entity acted (source, actor) or was acted upon (target)."""

    ACTOR = "actor"
    TARGET = "target"


@dataclass(frozen=True, slots=True)
class Entity:
    """One thing an alert names: a host, an IP, a user, a device, a patient record, an AE title."""

    kind: EntityKind
    value: str
    role: EntityRole = EntityRole.ACTOR

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.value}"


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where an object came from: the source, the file or stream, the record within it."""

    source: str
    locator: str | None = None
    record: int | None = None
    sensor: str | None = None
    ingested_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ParseError:
    """A record a source could not turn into an event; carried as data, never raised mid-run."""

    source: str
    locator: str
    reason: str
    record: int | None = None
    raw: str | None = None

    def describe(self) -> str:
        where = self.locator if self.record is None else f"{self.locator} record {self.record}"
        return f"{where}: {self.reason}"


# a STIX/TAXII timestamp (RFC 3339 in UTC with a "Z"); the store and the sharing layer both read them
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def parse_timestamp(value: str) -> datetime:
    """A STIX/TAXII timestamp as an aware datetime; ValueError for a shape or a date that cannot be
    (month 13, 30 February, hour 99, year 0000). Digits past microseconds are cut, not rounded."""
    if not TIMESTAMP_RE.match(value):
        raise ValueError(f"{value[:40]!r} is not a timestamp of the form YYYY-MM-DDTHH:MM:SS[.s]Z")
    head, _, frac = value[:-1].partition(".")
    try:
        ts = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not a real date and time") from None
    if frac:
        ts = ts.replace(microsecond=int(frac[:6].ljust(6, "0")))
    return ts
