"""Tables for analyst feedback on alerts and the activity on incidents (same metadata as the core schema)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, Integer, String, Table, Text

from healthsec.store.schema import metadata

alert_feedback = Table(
    "alert_feedback",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("org", String(64), nullable=False),
    Column("alert_id", String(64), nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("verdict", String(32), nullable=False),
    Column("detector", String(128), nullable=False),
    Column("body", JSON, nullable=False),
    Index("ix_alert_feedback_org_alert", "org", "alert_id"),
)

incident_activity = Table(
    "incident_activity",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("org", String(64), nullable=False),
    Column("incident_id", String(64), nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", Text, nullable=True),
    Index("ix_incident_activity_org_incident", "org", "incident_id"),
)
