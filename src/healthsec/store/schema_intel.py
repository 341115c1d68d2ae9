"""Tables for threat intelligence: advisories, KEV and EPSS (with the date of the feed), advisory matches."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, Index, Integer, String, Table

from healthsec.store.schema import metadata

intel_advisories = Table(
    "intel_advisories",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("title", String(512), nullable=False),
    Column("current_release", String(40), nullable=True),
    Column("body", JSON, nullable=False),
)

# one row per feed ("kev", "epss"): which catalogue / score date the stored entries come from
intel_feeds = Table(
    "intel_feeds",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("feed", String(16), primary_key=True),
    Column("version", String(64), nullable=True),
    Column("as_of", String(10), nullable=False),
    Column("entries", Integer, nullable=False),
)

intel_kev = Table(
    "intel_kev",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("cve", String(32), primary_key=True),
    Column("date_added", String(10), nullable=True),
    Column("ransomware", Boolean, nullable=True),
    Column("body", JSON, nullable=False),
)

intel_epss = Table(
    "intel_epss",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("cve", String(32), primary_key=True),
    Column("epss", Float, nullable=False),
    Column("percentile", Float, nullable=True),
)

intel_matches = Table(
    "intel_matches",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("asset_id", String(128), nullable=False),
    Column("advisory_id", String(128), nullable=False),
    Column("confidence", Float, nullable=False),
    Column("body", JSON, nullable=False),
    Index("ix_intel_matches_org_asset", "org", "asset_id"),
)
