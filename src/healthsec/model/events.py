"""Typed, frozen events: network flows, host logs, device telemetry, EHR record access, clinical messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal

from healthsec.model.common import SCHEMA_VERSION, Provenance, ensure_utc


@dataclass(frozen=True, slots=True, kw_only=True)
class EventBase:
    """Fields every event has. ``id`` is stable: the same input always gives the same id."""

    kind: ClassVar[str] = "event"
    id: str
    ts: datetime
    source: str
    provenance: Provenance | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", ensure_utc(self.ts))
        if not self.id:
            raise ValueError("event id must not be empty")


@dataclass(frozen=True, slots=True, kw_only=True)
class Flow(EventBase):
    """A bidirectional network flow (5-tuple, volumes); ``features`` keeps dataset-specific numbers."""

    kind: ClassVar[str] = "flow"
    src_ip: str | None
    dst_ip: str | None
    src_port: int | None = None
    dst_port: int | None = None
    protocol: str | None = None
    duration: float | None = None
    bytes_out: int | None = None
    bytes_in: int | None = None
    packets_out: int | None = None
    packets_in: int | None = None
    application: str | None = None
    features: Mapping[str, float | str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRecord(EventBase):
    """A host or application log record that keeps its original fields so Sigma names resolve."""

    kind: ClassVar[str] = "log"
    host: str | None = None
    channel: str | None = None
    event_id: int | None = None
    provider: str | None = None
    fields: Mapping[str, object] = field(default_factory=dict)
    message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceReading(EventBase):
    """One telemetry message from a medical or IoT device: metric name to value (None if absent)."""

    kind: ClassVar[str] = "reading"
    device_id: str
    device_type: str | None = None
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    ip: str | None = None


AccessAction = Literal["read", "search", "write", "export", "print", "delete"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordAccess(EventBase):
    """An EHR / FHIR access: who touched which patient's record, how, from where."""

    kind: ClassVar[str] = "access"
    user: str
    role: str | None = None
    patient_id: str | None = None
    action: AccessAction = "read"
    resource_type: str | None = None
    records: int = 1
    workstation: str | None = None
    outcome: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClinicalMessage(EventBase):
    """An HL7 v2 message or a DICOM operation between clinical systems."""

    kind: ClassVar[str] = "clinical"
    protocol: Literal["hl7", "dicom"]
    message_type: str
    sender: str | None = None
    receiver: str | None = None
    src_ip: str | None = None
    dst_ip: str | None = None
    size: int | None = None
    patient_id: str | None = None
    fields: Mapping[str, object] = field(default_factory=dict)


Event = Flow | LogRecord | DeviceReading | RecordAccess | ClinicalMessage

EVENT_TYPES: dict[str, type[EventBase]] = {
    cls.kind: cls for cls in (Flow, LogRecord, DeviceReading, RecordAccess, ClinicalMessage)
}
