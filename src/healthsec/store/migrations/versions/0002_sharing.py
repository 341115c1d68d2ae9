"""Sharing tables: TAXII collections, objects, status, partners, rights, pull cursors, quarantine."""

import sqlalchemy as sa
from alembic import op

revision = "0002_sharing"
down_revision = "0001"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "share_collections",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("title", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("alias", sa.String(128), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "share_objects",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("collection_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("spec_version", sa.String(8), nullable=False),
        sa.Column("modified", sa.String(40), nullable=False),
        sa.Column("date_added", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(256), nullable=True),
        sa.Column("confidence", sa.Integer, nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.UniqueConstraint("org", "collection_id", "id", "modified", name="uq_share_objects_version"),
    )
    op.create_index("ix_share_objects_page", "share_objects", ["org", "collection_id", "seq"])
    op.create_index("ix_share_objects_added", "share_objects", ["org", "collection_id", "date_added"])
    op.create_table(
        "share_status",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("collection_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total_count", sa.Integer, nullable=False),
        sa.Column("success_count", sa.Integer, nullable=False),
        sa.Column("failure_count", sa.Integer, nullable=False),
        sa.Column("pending_count", sa.Integer, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_table(
        "share_partners",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("organisation", sa.String(256), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=True),
        sa.Column("url", sa.String(1024), nullable=True),
        sa.Column("remote_collection", sa.String(128), nullable=True),
        sa.Column("remote_user", sa.String(128), nullable=True),
        sa.Column("policy", sa.JSON, nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "share_rights",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("partner", sa.String(128), primary_key=True),
        sa.Column("collection_id", sa.String(64), primary_key=True),
        sa.Column("can_read", sa.Boolean, nullable=False),
        sa.Column("can_write", sa.Boolean, nullable=False),
    )
    op.create_table(
        "share_cursors",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("partner", sa.String(128), primary_key=True),
        sa.Column("collection", sa.String(128), primary_key=True),
        sa.Column("added_after", sa.String(40), nullable=True),
        sa.Column("last_attempt", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("pulled", sa.Integer, nullable=False),
    )
    op.create_table(
        "share_quarantine",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("received", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(256), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("raw", sa.Text, nullable=True),
    )


def downgrade() -> None:
    for name in (
        "share_quarantine",
        "share_cursors",
        "share_rights",
        "share_partners",
        "share_status",
        "share_objects",
        "share_collections",
    ):
        op.drop_table(name)
