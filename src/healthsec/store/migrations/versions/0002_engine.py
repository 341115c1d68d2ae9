"""Detection state per organisation (learning start, cursor, lease) and detector dead letters (the engine)."""

import sqlalchemy as sa
from alembic import op

revision = "0002_engine"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "detection_state",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("learning_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursor", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_ts", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.JSON, nullable=True),
    )
    op.create_table(
        "detector_dead_letters",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("detector", sa.String(128), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
    )
    op.create_index("ix_dead_letters_org_detector", "detector_dead_letters", ["org", "detector"])


def downgrade() -> None:
    op.drop_table("detector_dead_letters")
    op.drop_table("detection_state")
