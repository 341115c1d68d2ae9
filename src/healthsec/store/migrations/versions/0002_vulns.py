"""Vulnerabilities on assets and asset exposure profiles (analysis: risk and attack paths)."""

import sqlalchemy as sa
from alembic import op

revision = "0002_vulns"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vulnerabilities",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("asset_id", sa.String(128), nullable=False),
        sa.Column("cve", sa.String(32), nullable=False),
        sa.Column("base_score", sa.Float, nullable=True),
        sa.Column("known_exploited", sa.Boolean, nullable=True),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_vulns_org_asset", "vulnerabilities", ["org", "asset_id"])
    op.create_index("ix_vulns_org_cve", "vulnerabilities", ["org", "cve"])
    op.create_table(
        "asset_profiles",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("asset_id", sa.String(128), primary_key=True),
        sa.Column("phi_records", sa.Integer, nullable=True),
        sa.Column("body", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("asset_profiles")
    op.drop_table("vulnerabilities")
