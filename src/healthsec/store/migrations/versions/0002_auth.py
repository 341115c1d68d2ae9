"""Tenants and API tokens: orgs, api_tokens (hashed secrets, expiry, revocation)."""

import sqlalchemy as sa
from alembic import op

revision = "0002_auth"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orgs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(128), nullable=False),
    )
    op.create_index("ix_api_tokens_org", "api_tokens", ["org"])


def downgrade() -> None:
    op.drop_index("ix_api_tokens_org", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("orgs")
