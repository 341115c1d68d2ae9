"""Sharing tables: TAXII collections, STIX objects, status, partners, rights, pull cursors, quarantine."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from healthsec.store.schema import metadata

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGSERIAL.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

share_collections = Table(
    "share_collections",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("title", String(256), nullable=False),
    Column("description", Text, nullable=True),
    Column("alias", String(128), nullable=True),
    Column("created", DateTime(timezone=True), nullable=False),
)

share_objects = Table(
    "share_objects",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("org", String(64), nullable=False),
    Column("collection_id", String(64), nullable=False),
    Column("id", String(128), nullable=False),
    Column("type", String(64), nullable=False),
    Column("spec_version", String(8), nullable=False),
    Column("modified", String(40), nullable=False),
    Column("date_added", DateTime(timezone=True), nullable=False),
    Column("source", String(256), nullable=True),
    Column("confidence", Integer, nullable=True),
    Column("body", Text, nullable=False),
    UniqueConstraint("org", "collection_id", "id", "modified", name="uq_share_objects_version"),
    Index("ix_share_objects_page", "org", "collection_id", "seq"),
    Index("ix_share_objects_added", "org", "collection_id", "date_added"),
)

share_status = Table(
    "share_status",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("collection_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("request_timestamp", DateTime(timezone=True), nullable=False),
    Column("total_count", Integer, nullable=False),
    Column("success_count", Integer, nullable=False),
    Column("failure_count", Integer, nullable=False),
    Column("pending_count", Integer, nullable=False),
    Column("body", JSON, nullable=False),
)

share_partners = Table(
    "share_partners",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("organisation", String(256), nullable=False),
    Column("password_hash", String(256), nullable=True),
    Column("url", String(1024), nullable=True),
    Column("remote_collection", String(128), nullable=True),
    Column("remote_user", String(128), nullable=True),
    Column("policy", JSON, nullable=True),
    Column("push_collection", String(128), nullable=True),
    Column("created", DateTime(timezone=True), nullable=False),
)

share_rights = Table(
    "share_rights",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("partner", String(128), primary_key=True),
    Column("collection_id", String(64), primary_key=True),
    Column("can_read", Boolean, nullable=False),
    Column("can_write", Boolean, nullable=False),
)

share_cursors = Table(
    "share_cursors",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("partner", String(128), primary_key=True),
    Column("collection", String(128), primary_key=True),
    Column("added_after", String(40), nullable=True),
    Column("last_attempt", DateTime(timezone=True), nullable=True),
    Column("last_success", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("pulled", Integer, nullable=False),
)

share_quarantine = Table(
    "share_quarantine",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("received", DateTime(timezone=True), nullable=False),
    Column("source", String(256), nullable=True),
    Column("reason", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("raw", Text, nullable=True),
)
