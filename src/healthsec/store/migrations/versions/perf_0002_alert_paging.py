"""Alert reads at scale: (org, ts, id) indexes for keyset pages, and alert_entities for risk per asset.

The table is filled from the stored alerts' bodies: by one INSERT .. SELECT on PostgreSQL (its lower()
folds what Python's would for host names and IPs), 1,000 alerts at a time through Python on SQLite.
"""

import sqlalchemy as sa
from alembic import op

revision = "perf_0002_alert_paging"
down_revision = "0001"
branch_labels = None
depends_on = None

_alerts = sa.table(
    "alerts", sa.column("org", sa.String), sa.column("id", sa.String), sa.column("body", sa.JSON)
)


def upgrade() -> None:
    from healthsec.model.common import ASSET_KINDS
    from healthsec.store.alert_entities import write_entities

    op.create_index("ix_alerts_org_ts_id", "alerts", ["org", "ts", "id"])
    op.create_index("ix_alerts_org_detector_ts_id", "alerts", ["org", "detector", "ts", "id"])
    op.drop_index("ix_alerts_org_ts", table_name="alerts")  # a prefix of ix_alerts_org_ts_id
    op.create_table(
        "alert_entities",
        sa.Column("org", sa.String(64), primary_key=True),
        sa.Column("alert_id", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, primary_key=True),
        sa.Column("detector", sa.String(128), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
    )
    op.create_index("ix_alert_entities_org_value", "alert_entities", ["org", "value"])
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":  # one statement in the database: minutes faster on big stores
        conn.exec_driver_sql(
            "INSERT INTO alert_entities (org, alert_id, value, detector, title, severity) "
            "SELECT a.org, a.id, lower(e->>'value'), a.detector, a.title, a.severity "
            "FROM alerts a CROSS JOIN LATERAL json_array_elements(a.body->'entities') e "
            "WHERE e->>'kind' = ANY(%(kinds)s) AND coalesce(e->>'value', '') <> '' "
            "ON CONFLICT DO NOTHING",
            {"kinds": sorted(k.value for k in ASSET_KINDS)},
        )
        return
    last = ("", "")
    while True:
        rows = conn.execute(
            sa.select(_alerts.c.org, _alerts.c.id, _alerts.c.body)
            .where(sa.tuple_(_alerts.c.org, _alerts.c.id) > sa.tuple_(*map(sa.literal, last)))
            .order_by(_alerts.c.org, _alerts.c.id)
            .limit(1000)
        ).all()
        if not rows:
            return
        for org in {r.org for r in rows}:
            write_entities(conn, org, [r.body for r in rows if r.org == org])
        last = (rows[-1].org, rows[-1].id)


def downgrade() -> None:
    op.drop_index("ix_alert_entities_org_value", table_name="alert_entities")
    op.drop_table("alert_entities")
    op.create_index("ix_alerts_org_ts", "alerts", ["org", "ts"])
    op.drop_index("ix_alerts_org_detector_ts_id", table_name="alerts")
    op.drop_index("ix_alerts_org_ts_id", table_name="alerts")
