"""Learnt detector baselines per organisation (JSON state): a worker restart neither forgets nor relearns."""

import sqlalchemy as sa
from alembic import op

revision = "engine_0002_baselines"
down_revision = "0002_engine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "detector_baselines",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("detector", sa.String(128), primary_key=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("learnt_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("detector_baselines")
