"""Triage: analyst feedback on alerts (for training) and incident activity (status, assignment, comments)."""

import sqlalchemy as sa
from alembic import op

revision = "usecases_0002_triage"
down_revision = "0001"
branch_labels = ("triage",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_feedback",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("detector", sa.String(128), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_alert_feedback_org_alert", "alert_feedback", ["org", "alert_id"])
    op.create_table(
        "incident_activity",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.String(64), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Text, nullable=True),
    )
    op.create_index("ix_incident_activity_org_incident", "incident_activity", ["org", "incident_id"])


def downgrade() -> None:
    op.drop_table("incident_activity")
    op.drop_table("alert_feedback")
