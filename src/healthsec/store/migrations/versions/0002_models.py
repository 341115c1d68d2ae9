"""Model artefacts: versioned metadata per organisation and kind, and the artefacts' files as bytes."""

import sqlalchemy as sa
from alembic import op

revision = "models_0002"
down_revision = "0001"
branch_labels = ("models",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_artefacts",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.UniqueConstraint("org", "kind", "version", name="uq_model_artefacts_version"),
    )
    op.create_index(
        "ux_model_artefacts_promoted",
        "model_artefacts",
        ["org", "kind"],
        unique=True,
        sqlite_where=sa.text("status = 'promoted'"),
        postgresql_where=sa.text("status = 'promoted'"),
    )
    op.create_table(
        "model_files",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("artefact_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_files")
    op.drop_index("ux_model_artefacts_promoted", table_name="model_artefacts")
    op.drop_table("model_artefacts")
