"""Threat intelligence: CSAF advisories, KEV and EPSS feeds with their dates, advisory-to-asset matches."""

import sqlalchemy as sa
from alembic import op

revision = "intel_0002"
down_revision = "0001"
branch_labels = ("intel",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intel_advisories",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("title", sa.String(512), nullable=False),
        sa.Column("current_release", sa.String(40), nullable=True),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_table(
        "intel_feeds",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("feed", sa.String(16), primary_key=True),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("as_of", sa.String(10), nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
    )
    op.create_table(
        "intel_kev",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("cve", sa.String(32), primary_key=True),
        sa.Column("date_added", sa.String(10), nullable=True),
        sa.Column("ransomware", sa.Boolean, nullable=True),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_table(
        "intel_epss",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("cve", sa.String(32), primary_key=True),
        sa.Column("epss", sa.Float, nullable=False),
        sa.Column("percentile", sa.Float, nullable=True),
    )
    op.create_table(
        "intel_matches",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("asset_id", sa.String(128), nullable=False),
        sa.Column("advisory_id", sa.String(128), nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_intel_matches_org_asset", "intel_matches", ["org", "asset_id"])


def downgrade() -> None:
    for table in ("intel_matches", "intel_epss", "intel_kev", "intel_feeds", "intel_advisories"):
        op.drop_table(table)
