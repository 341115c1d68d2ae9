"""Tables for tenants (organisations) and API tokens (hashed at rest, expiring, revocable)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, String, Table

from healthsec.store.schema import metadata

orgs = Table(
    "orgs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("org", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("secret_hash", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("created_by", String(128), nullable=False),
    Index("ix_api_tokens_org", "org"),
)
