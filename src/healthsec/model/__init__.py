"""The domain model: frozen, typed objects that every stage takes and returns. No I/O here."""

from healthsec.model.alerts import Alert, Incident, IncidentStatus
from healthsec.model.assets import Asset, Criticality
from healthsec.model.common import (
    SCHEMA_VERSION,
    Entity,
    EntityKind,
    EntityRole,
    ParseError,
    Provenance,
    Severity,
    ensure_utc,
    parse_utc,
    stable_id,
)
from healthsec.model.events import (
    EVENT_TYPES,
    ClinicalMessage,
    DeviceReading,
    Event,
    EventBase,
    Flow,
    LogRecord,
    RecordAccess,
)

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "Alert",
    "Asset",
    "ClinicalMessage",
    "Criticality",
    "DeviceReading",
    "Entity",
    "EntityKind",
    "EntityRole",
    "Event",
    "EventBase",
    "Flow",
    "Incident",
    "IncidentStatus",
    "LogRecord",
    "ParseError",
    "Provenance",
    "RecordAccess",
    "Severity",
    "ensure_utc",
    "parse_utc",
    "stable_id",
]
