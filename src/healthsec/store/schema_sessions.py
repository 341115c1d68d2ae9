"""Table for the console's server-side sessions (the cookie holds a random id; only its hash is stored)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, String, Table

from healthsec.store.schema import metadata

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("org", String(64), nullable=False),
    Column("token_id", String(32), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_console_sessions_token", "token_id"),
)
