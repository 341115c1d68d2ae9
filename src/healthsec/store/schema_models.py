"""Tables for model artefacts: metadata per (org, kind, version) and the artefact's files as bytes."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
    text,
)

from healthsec.store.schema import metadata

model_artefacts = Table(
    "model_artefacts",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),  # "<kind>-v<version>"
    Column("kind", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("body", JSON, nullable=False),  # ModelArtefact.to_dict()
    UniqueConstraint("org", "kind", "version", name="uq_model_artefacts_version"),
    # At most one promoted artefact per organisation and kind, held by the database itself.
    Index(
        "ux_model_artefacts_promoted",
        "org",
        "kind",
        unique=True,
        sqlite_where=text("status = 'promoted'"),
        postgresql_where=text("status = 'promoted'"),
    ),
)

model_files = Table(
    "model_files",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("artefact_id", String(64), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("data", LargeBinary, nullable=False),
)
