"""Sharing: the partner collection we push to (kept apart from the policy, which holds only sharing rules)."""

import sqlalchemy as sa
from alembic import op

revision = "0003_sharing_push"
down_revision = "0002_sharing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("share_partners") as batch:
        batch.add_column(sa.Column("push_collection", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("share_partners") as batch:
        batch.drop_column("push_collection")
