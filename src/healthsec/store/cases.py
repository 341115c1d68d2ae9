"""Repository of cases, entries, timeline, playbook runs/steps, outbox and clocks; one transaction per change.

A change to a case, its timeline line and the notifications it raises are written through one
:class:`CaseTx` inside one database transaction (the transactional outbox): either all of it is stored
or none of it. Inserts keyed by stable ids are idempotent, so a replayed step writes nothing twice.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from healthsec.store import schema_cases as sc
from healthsec.store.sql import Store


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: they were stored as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _row(r: Any) -> dict[str, Any]:
    out = dict(r._mapping)
    for k, v in out.items():
        if isinstance(v, datetime):
            out[k] = utc(v)
    return out


def _insert_new(conn: Connection, table: Table, row: dict[str, Any], keys: tuple[str, ...]) -> bool:
    """Insert unless the key exists; True when the row is new."""
    ins: Any = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
    stmt = ins.values(row).on_conflict_do_nothing(index_elements=list(keys))
    # RETURNING tells on both dialects whether a row was inserted (psycopg's rowcount does not)
    return bool(conn.execute(stmt.returning(table.c[keys[0]])).fetchall())


@dataclass
class CaseTx:
    """Writes inside one transaction (the case change, its timeline line, its outbox messages)."""

    conn: Connection
    org: str

    def insert_case(self, row: dict[str, Any]) -> bool:
        return _insert_new(self.conn, sc.cases, {"org": self.org, **row}, ("org", "id"))

    def update_case(self, case_id: str, **values: Any) -> None:
        t = sc.cases
        self.conn.execute(update(t).where(t.c.org == self.org, t.c.id == case_id).values(**values))

    def add_entry(
        self, entry_id: str, case_id: str, kind: str, ts: datetime, actor: str, body: dict[str, Any]
    ) -> bool:
        row = {"id": entry_id, "case_id": case_id, "kind": kind, "ts": ts, "actor": actor, "body": body}
        return _insert_new(self.conn, sc.case_entries, {"org": self.org, **row}, ("org", "id"))

    def update_entry(self, entry_id: str, body: dict[str, Any]) -> None:
        t = sc.case_entries
        self.conn.execute(update(t).where(t.c.org == self.org, t.c.id == entry_id).values(body=body))

    def timeline(self, case_id: str, ts: datetime, actor: str, action: str, **detail: Any) -> None:
        self.conn.execute(
            sc.case_timeline.insert().values(
                org=self.org, case_id=case_id, ts=ts, actor=actor, action=action, detail=detail
            )
        )

    def enqueue(self, message_id: str, channel: str, ts: datetime, body: dict[str, Any]) -> bool:
        row = {
            "org": self.org,
            "id": message_id,
            "created_at": ts,
            "channel": channel,
            "status": "pending",
            "attempts": 0,
            "next_at": ts,
            "last_error": None,
            "body": body,
        }
        return _insert_new(self.conn, sc.outbox, row, ("org", "id"))

    def add_clock(self, case_id: str, regime: str, obligation: str, row: dict[str, Any]) -> bool:
        full = {"org": self.org, "case_id": case_id, "regime": regime, "obligation": obligation, **row}
        return _insert_new(self.conn, sc.breach_clocks, full, ("org", "case_id", "regime", "obligation"))

    def set_clock(self, case_id: str, regime: str, obligation: str, **values: Any) -> int:
        t = sc.breach_clocks
        stmt = (
            update(t)
            .where(t.c.org == self.org, t.c.case_id == case_id, t.c.regime == regime)
            .where(t.c.obligation == obligation)
            .values(**values)
        )
        return int(self.conn.execute(stmt).rowcount)

    def upsert_run(self, row: dict[str, Any]) -> bool:
        """Insert the run, or update its status/case/error/body when it exists; True when new."""
        full = {"org": self.org, **row}
        if _insert_new(self.conn, sc.playbook_runs, full, ("org", "id")):
            return True
        t = sc.playbook_runs
        keep = {k: v for k, v in row.items() if k in ("status", "case_id", "error", "updated_at", "body")}
        self.conn.execute(update(t).where(t.c.org == self.org, t.c.id == row["id"]).values(**keep))
        return False

    def record_step(self, row: dict[str, Any]) -> None:
        t = sc.playbook_steps
        full = {"org": self.org, **row}
        if not _insert_new(self.conn, t, full, ("org", "run_id", "idx")):
            self.conn.execute(
                update(t)
                .where(t.c.org == self.org, t.c.run_id == row["run_id"], t.c.idx == row["idx"])
                .values(**{k: v for k, v in row.items() if k not in ("run_id", "idx")})
            )


@dataclass
class CaseRepository:
    engine: Engine
    org: str

    @contextmanager
    def tx(self) -> Iterator[CaseTx]:
        with self.engine.begin() as conn:
            yield CaseTx(conn, self.org)

    def _all(self, stmt: Any) -> builtins.list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(stmt)]

    # --- cases -------------------------------------------------------------------------------------
    def get(self, case_id: str) -> dict[str, Any] | None:
        t = sc.cases
        rows = self._all(select(t).where(t.c.org == self.org, t.c.id == case_id))
        return rows[0] if rows else None

    def list(
        self, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[dict[str, Any]]:
        t = sc.cases
        stmt = select(t).where(t.c.org == self.org)
        if status:
            stmt = stmt.where(t.c.status == status)
        return self._all(stmt.order_by(t.c.opened_at.desc(), t.c.id).limit(limit).offset(offset))

    def count(self) -> int:
        t = sc.cases
        with self.engine.connect() as conn:
            stmt = select(func.count()).select_from(t).where(t.c.org == self.org)
            return int(conn.execute(stmt).scalar_one())

    def entries(self, case_id: str, kind: str | None = None) -> builtins.list[dict[str, Any]]:
        t = sc.case_entries
        stmt = select(t).where(t.c.org == self.org, t.c.case_id == case_id)
        if kind:
            stmt = stmt.where(t.c.kind == kind)
        return self._all(stmt.order_by(t.c.ts, t.c.id))

    def entry(self, entry_id: str) -> dict[str, Any] | None:
        t = sc.case_entries
        rows = self._all(select(t).where(t.c.org == self.org, t.c.id == entry_id))
        return rows[0] if rows else None

    def entries_of_kind(self, kind: str) -> builtins.list[dict[str, Any]]:
        t = sc.case_entries
        return self._all(select(t).where(t.c.org == self.org, t.c.kind == kind).order_by(t.c.ts, t.c.id))

    def timeline(self, case_id: str) -> builtins.list[dict[str, Any]]:
        t = sc.case_timeline
        return self._all(select(t).where(t.c.org == self.org, t.c.case_id == case_id).order_by(t.c.seq))

    # --- playbook runs -----------------------------------------------------------------------------
    def run(self, run_id: str) -> dict[str, Any] | None:
        t = sc.playbook_runs
        rows = self._all(select(t).where(t.c.org == self.org, t.c.id == run_id))
        return rows[0] if rows else None

    def runs(self, case_id: str | None = None, subject: str | None = None) -> builtins.list[dict[str, Any]]:
        t = sc.playbook_runs
        stmt = select(t).where(t.c.org == self.org)
        if case_id is not None:
            stmt = stmt.where(t.c.case_id == case_id)
        if subject is not None:
            stmt = stmt.where(t.c.subject == subject)
        return self._all(stmt.order_by(t.c.started_at, t.c.id))

    def steps(self, run_id: str) -> builtins.list[dict[str, Any]]:
        t = sc.playbook_steps
        return self._all(select(t).where(t.c.org == self.org, t.c.run_id == run_id).order_by(t.c.idx))

    # --- clocks ------------------------------------------------------------------------------------
    def clocks(self, case_id: str | None = None) -> builtins.list[dict[str, Any]]:
        t = sc.breach_clocks
        stmt = select(t).where(t.c.org == self.org)
        if case_id is not None:
            stmt = stmt.where(t.c.case_id == case_id)
        return self._all(stmt.order_by(t.c.case_id, t.c.regime, t.c.obligation))

    # --- outbox (all organisations: the dispatcher serves every tenant) -----------------------------
    def outbox(self, status: str | None = None) -> builtins.list[dict[str, Any]]:
        t = sc.outbox
        stmt = select(t).where(t.c.org == self.org)
        if status:
            stmt = stmt.where(t.c.status == status)
        return self._all(stmt.order_by(t.c.created_at, t.c.id))

    def due_messages(self, now: datetime, limit: int = 100) -> builtins.list[dict[str, Any]]:
        t = sc.outbox
        stmt = (
            select(t)
            .where(and_(t.c.org == self.org, t.c.status == "pending", t.c.next_at <= now))
            .order_by(t.c.next_at, t.c.id)
            .limit(limit)
        )
        return self._all(stmt)

    def known_messages(self, ids: builtins.list[str]) -> set[str]:
        """Which of ``ids`` the outbox already holds (any status)."""
        t = sc.outbox
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            stmt = select(t.c.id).where(t.c.org == self.org, t.c.id.in_(ids[i : i + 500]))
            with self.engine.connect() as conn:
                found.update(r[0] for r in conn.execute(stmt))
        return found

    def settle(self, message_id: str, **values: Any) -> None:
        t = sc.outbox
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.org == self.org, t.c.id == message_id).values(**values))


def cases(store: Store) -> CaseRepository:
    return CaseRepository(store.engine, store.org)
