"""Alembic environment: runs against the connection handed over by healthsec.store.migrate."""

from __future__ import annotations

from alembic import context

from healthsec.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("healthsec migrations run through healthsec.store.migrate(), not the alembic CLI")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
