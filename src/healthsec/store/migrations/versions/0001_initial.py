"""Initial tables: events, alerts, incidents, assets, audit (all scoped by organisation)."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_events_org_ts", "events", ["org", "ts"])
    op.create_table(
        "alerts",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detector", sa.String(128), nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("incident_id", sa.String(64), nullable=True),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_alerts_org_ts", "alerts", ["org", "ts"])
    op.create_index("ix_alerts_org_incident", "alerts", ["org", "incident_id"])
    op.create_table(
        "incidents",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_incidents_org_last", "incidents", ["org", "last_seen"])
    op.create_table(
        "assets",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("criticality", sa.Integer, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_assets_org_ip", "assets", ["org", "ip"])
    op.create_table(
        "audit",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(256), nullable=True),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_audit_org_ts", "audit", ["org", "ts"])


def downgrade() -> None:
    for table in ("audit", "assets", "incidents", "alerts", "events"):
        op.drop_table(table)
