"""Tables for cases, their entries and timeline, playbook runs and steps, the outbox and breach clocks."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, Integer, String, Table, Text

from healthsec.store.schema import metadata

cases = Table(
    "cases",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("title", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("aware_at", DateTime(timezone=True), nullable=True),
    Column("body", JSON, nullable=False),
    Index("ix_cases_org_status", "org", "status"),
)

# tasks, observables, comments, attachments (by reference) and containment requests: one row each
case_entries = Table(
    "case_entries",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("case_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("body", JSON, nullable=False),
    Index("ix_case_entries_org_case", "org", "case_id"),
)

case_timeline = Table(
    "case_timeline",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("org", String(64), nullable=False),
    Column("case_id", String(64), nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("detail", JSON, nullable=False),
    Index("ix_case_timeline_org_case", "org", "case_id"),
)

playbook_runs = Table(
    "playbook_runs",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("playbook", String(128), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("case_id", String(64), nullable=True),
    Column("status", String(32), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("error", Text, nullable=True),
    Column("body", JSON, nullable=False),
    Index("ix_playbook_runs_org_subject", "org", "subject"),
)

playbook_steps = Table(
    "playbook_steps",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("run_id", String(64), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("input", JSON, nullable=False),
    Column("output", JSON, nullable=True),
    Column("error", Text, nullable=True),
)

outbox = Table(
    "outbox",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("body", JSON, nullable=False),
    Index("ix_outbox_status_next", "status", "next_at"),
)

breach_clocks = Table(
    "breach_clocks",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("case_id", String(64), primary_key=True),
    Column("regime", String(16), primary_key=True),
    Column("obligation", String(64), primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=True),
    Column("due_date", String(10), nullable=True),
    Column("basis", Text, nullable=False),
    Column("met_at", DateTime(timezone=True), nullable=True),
    Column("warned_at", DateTime(timezone=True), nullable=True),
)

# one random key per organisation for the keyed pseudonyms of patients named in cases
case_keys = Table(
    "case_keys",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("key_hex", String(128), nullable=False),
)
