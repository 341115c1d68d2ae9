"""Cases, case entries and timeline, playbook runs and steps, notification outbox, breach clocks."""

import sqlalchemy as sa
from alembic import op

revision = "respond_0002_cases"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("aware_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_cases_org_status", "cases", ["org", "status"])
    op.create_table(
        "case_entries",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_case_entries_org_case", "case_entries", ["org", "case_id"])
    op.create_table(
        "case_timeline",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_case_timeline_org_case", "case_timeline", ["org", "case_id"])
    op.create_table(
        "playbook_runs",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("playbook", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_playbook_runs_org_subject", "playbook_runs", ["org", "subject"])
    op.create_table(
        "playbook_steps",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("input", sa.JSON, nullable=False),
        sa.Column("output", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_table(
        "outbox",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_outbox_status_next", "outbox", ["status", "next_at"])
    op.create_table(
        "breach_clocks",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("regime", sa.String(16), primary_key=True),
        sa.Column("obligation", sa.String(64), primary_key=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_date", sa.String(10), nullable=True),
        sa.Column("basis", sa.Text, nullable=False),
        sa.Column("met_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "case_keys",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("key_hex", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("case_keys")
    op.drop_table("breach_clocks")
    op.drop_table("outbox")
    op.drop_table("playbook_steps")
    op.drop_table("playbook_runs")
    op.drop_table("case_timeline")
    op.drop_table("case_entries")
    op.drop_table("cases")
