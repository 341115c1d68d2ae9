"""Tables for vulnerabilities on assets and asset exposure profiles (same metadata as the core schema)."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, Index, Integer, String, Table

from healthsec.store.schema import metadata

vulnerabilities = Table(
    "vulnerabilities",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("asset_id", String(128), nullable=False),
    Column("cve", String(32), nullable=False),
    Column("base_score", Float, nullable=True),
    Column("known_exploited", Boolean, nullable=True),
    Column("body", JSON, nullable=False),
    Index("ix_vulns_org_asset", "org", "asset_id"),
    Index("ix_vulns_org_cve", "org", "cve"),
)

asset_profiles = Table(
    "asset_profiles",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("asset_id", String(128), primary_key=True),
    Column("phi_records", Integer, nullable=True),
    Column("body", JSON, nullable=False),
)
