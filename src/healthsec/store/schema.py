"""Table definitions (SQLAlchemy Core). Every row belongs to one organisation (tenant)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("source", String(128), nullable=False),
    Column("body", JSON, nullable=False),
    Index("ix_events_org_ts", "org", "ts"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("detector", String(128), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("score", Float, nullable=False),
    Column("title", Text, nullable=False),
    Column("incident_id", String(64), nullable=True),
    Column("body", JSON, nullable=False),
    # the order alerts were stored in (migration live_0002_alert_seq fills it): live listeners page by it
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), nullable=True),
    # (ts, id) is the list's order: keyset pages walk this index both ways (oldest or newest first)
    Index("ix_alerts_org_ts_id", "org", "ts", "id"),
    Index("ix_alerts_org_detector_ts_id", "org", "detector", "ts", "id"),
    Index("ix_alerts_org_incident", "org", "incident_id"),
    Index("ix_alerts_org_seq", "org", "seq"),
)

# The asset-naming entities of each alert (IP, host, device, AE title; lowercased), with the alert's
# detector, title and severity copied so that risk per asset is one GROUP BY, not a read of every body.
alert_entities = Table(
    "alert_entities",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("alert_id", String(64), primary_key=True),
    Column("value", Text, primary_key=True),
    Column("detector", String(128), nullable=False),
    Column("title", Text, nullable=False),
    Column("severity", Integer, nullable=False),
    Index("ix_alert_entities_org_value", "org", "value"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("score", Float, nullable=False),
    Column("status", String(32), nullable=False),
    Column("body", JSON, nullable=False),
    Index("ix_incidents_org_last", "org", "last_seen"),
)

assets = Table(
    "assets",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("ip", String(64), nullable=True),
    Column("zone", String(64), nullable=False),
    Column("criticality", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Index("ix_assets_org_ip", "org", "ip"),
)

audit = Table(
    "audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("org", String(64), nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(256), nullable=True),
    Column("detail", JSON, nullable=False),
    Index("ix_audit_org_ts", "org", "ts"),
)
