"""Repositories over SQLAlchemy 2 (SQLite embedded, PostgreSQL in production); idempotent writes."""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, delete, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from healthsec.model import Alert, Asset, Event, Incident
from healthsec.model.codec import (
    alert_from_dict,
    asset_from_dict,
    event_from_dict,
    incident_from_dict,
    to_dict,
)
from healthsec.store import schema
from healthsec.store.alert_entities import write_entities
from healthsec.store.errors import StoreError
from healthsec.store.jsonio import json_loads

DEFAULT_ORG = "local"
_BATCH = 500


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and a bare file path for SQLite."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser()}"
    return url


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _private_file(path: Path) -> None:
    """Create the SQLite file 0600 (its WAL and shared-memory files take the same mode) in a 0700 folder
    (new folders only: an existing one is the operator's choice)."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def open_engine(url: str) -> Engine:
    """Create an engine and check that the database answers; raise StoreError with one clear line."""
    full = normalise_url(url)
    if full.startswith("sqlite:///"):
        path = Path(full.removeprefix("sqlite:///"))
        if str(path) not in ("", ":memory:") and not path.parent.is_dir():
            from healthsec.config import default_db_url

            if full != normalise_url(default_db_url()):  # a typo must not create directories
                raise StoreError(f"cannot open database {path}: directory {path.parent} does not exist")
        if str(path) not in ("", ":memory:"):
            _private_file(path)  # the embedded default's data directory is made here, 0700
    try:
        connect_args: dict[str, Any] = {}
        if full.startswith("postgresql"):
            connect_args["connect_timeout"] = 5
        # hide_parameters: an error's text never carries bound values (token hashes, filters, PHI)
        opts: dict[str, Any] = {
            "pool_pre_ping": True,
            "hide_parameters": True,
            "json_deserializer": json_loads,
        }
        engine = create_engine(full, connect_args=connect_args, **opts)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreError(f"cannot open database {_redact(full)}: {reason}") from None
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")


def _insert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: Sequence[str]) -> int:
    """Insert rows, ignoring those whose key already exists; return how many were new."""
    if not rows:
        return 0
    dialect = conn.dialect.name
    total = 0
    for start in range(0, len(rows), _BATCH):
        chunk = rows[start : start + _BATCH]
        if dialect == "postgresql":
            stmt: Any = postgresql.insert(table).values(chunk).on_conflict_do_nothing(index_elements=keys)
        elif dialect == "sqlite":
            stmt = sqlite.insert(table).values(chunk).on_conflict_do_nothing(index_elements=keys)
        else:  # pragma: no cover - other dialects are not supported
            raise StoreError(f"unsupported database dialect {dialect}")
        # RETURNING counts the rows really inserted on both dialects (rowcount is -1 for batches on psycopg)
        total += len(conn.execute(stmt.returning(table.c.id)).fetchall())
    return total


def _upsert(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    keys: Sequence[str],
    keep: Sequence[str] = (),
) -> None:
    if not rows:
        return
    dialect = conn.dialect.name
    for start in range(0, len(rows), _BATCH):
        chunk = rows[start : start + _BATCH]
        ins: Any = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
        ins = ins.values(chunk)
        cols = {
            c.name: ins.excluded[c.name] for c in table.columns if c.name not in keys and c.name not in keep
        }
        conn.execute(ins.on_conflict_do_update(index_elements=keys, set_=cols))


def _copy_events_pg(engine: Engine, rows: list[dict[str, Any]]) -> int:
    """PostgreSQL bulk path: COPY into a temporary table, then one INSERT .. ON CONFLICT DO NOTHING.

    Hand-written because a multi-row INSERT through SQLAlchemy spends most of its time building parameters
    and serialising JSON; COPY with orjson-encoded bodies is several times faster and stays idempotent.
    """
    import orjson

    with engine.begin() as conn:
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS healthsec_events_in "
                "(org text, id text, kind text, ts timestamptz, source text, body json) ON COMMIT DELETE ROWS"
            )
            with cur.copy("COPY healthsec_events_in (org, id, kind, ts, source, body) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(
                        (r["org"], r["id"], r["kind"], r["ts"], r["source"], orjson.dumps(r["body"]).decode())
                    )
            cur.execute(
                "INSERT INTO events (org, id, kind, ts, source, body) "
                "SELECT org, id, kind, ts, source, body FROM healthsec_events_in "
                "ON CONFLICT (org, id) DO NOTHING"
            )
            return int(cur.rowcount)


def _dedupe(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        seen[(row["org"], row["id"])] = row
    return list(seen.values())


@dataclass
class EventRepository:
    engine: Engine
    org: str

    def add_many(self, items: Iterable[Event], bodies: Sequence[dict[str, Any]] | None = None) -> int:
        """Store events, skipping ids already stored; return how many were new.

        ``bodies`` may carry the events' canonical dicts already (the API wrote them): reused, not rebuilt.
        """
        items = list(items)
        dicts = bodies if bodies is not None and len(bodies) == len(items) else [to_dict(e) for e in items]
        rows = _dedupe(
            {"org": self.org, "id": e.id, "kind": e.kind, "ts": e.ts, "source": e.source, "body": d}
            for e, d in zip(items, dicts, strict=True)
        )
        if not rows:
            return 0
        if self.engine.dialect.name == "postgresql":
            return _copy_events_pg(self.engine, rows)
        with self.engine.begin() as conn:
            return _insert(conn, schema.events, rows, ("org", "id"))

    def first_ts(self, at_or_after: datetime | None = None) -> datetime | None:
        """The time of the organisation's earliest event (at or after ``at_or_after``), or None."""
        t = schema.events
        stmt = select(func.min(t.c.ts)).where(t.c.org == self.org)
        if at_or_after is not None:
            stmt = stmt.where(t.c.ts >= at_or_after)
        with self.engine.connect() as conn:
            first = conn.execute(stmt).scalar_one()
        if first is None:
            return None
        return first.replace(tzinfo=UTC) if first.tzinfo is None else first.astimezone(UTC)

    def between(self, start: datetime, end: datetime) -> Iterator[Event]:
        """Events with ``start <= ts < end``, in (time, id) order: the engine's buckets."""
        t = schema.events
        stmt = (
            select(t.c.body)
            .where(t.c.org == self.org, t.c.ts >= start, t.c.ts < end)
            .order_by(t.c.ts, t.c.id)
        )
        with self.engine.connect() as conn:
            for (body,) in conn.execute(stmt):
                yield event_from_dict(body)

    def count(self, kind: str | None = None) -> int:
        stmt = select(func.count()).select_from(schema.events).where(schema.events.c.org == self.org)
        if kind:
            stmt = stmt.where(schema.events.c.kind == kind)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def get(self, event_id: str) -> Event | None:
        stmt = select(schema.events.c.body).where(
            schema.events.c.org == self.org, schema.events.c.id == event_id
        )
        with self.engine.connect() as conn:
            body = conn.execute(stmt).scalar_one_or_none()
        return None if body is None else event_from_dict(body)

    def iter(self, kind: str | None = None) -> Iterator[Event]:
        stmt = select(schema.events.c.body).where(schema.events.c.org == self.org)
        if kind:
            stmt = stmt.where(schema.events.c.kind == kind)
        with self.engine.connect() as conn:
            for (body,) in conn.execute(stmt.order_by(schema.events.c.ts, schema.events.c.id)):
                yield event_from_dict(body)


@dataclass
class AlertRepository:
    engine: Engine
    org: str

    def add_many(self, items: Iterable[Alert]) -> int:
        """Store alerts; an alert seen again (same id, e.g. grown evidence) replaces the old body.

        Returns how many ids were new. The incident link is kept.
        """
        rows = _dedupe(
            {
                "org": self.org,
                "id": a.id,
                "ts": a.ts,
                "detector": a.detector,
                "severity": int(a.severity),
                "score": a.score,
                "title": a.title,
                "incident_id": None,
                "body": to_dict(a),
            }
            for a in items
        )
        t = schema.alerts
        with self.engine.begin() as conn:
            ids = [r["id"] for r in rows]
            known: set[str] = set()
            for start in range(0, len(ids), _BATCH):
                chunk = ids[start : start + _BATCH]
                known |= {
                    i for (i,) in conn.execute(select(t.c.id).where(t.c.org == self.org, t.c.id.in_(chunk)))
                }
            _upsert(conn, t, rows, ("org", "id"), keep=("incident_id", "seq"))
            write_entities(conn, self.org, [r["body"] for r in rows], known)
            return len(set(ids) - known)

    def count(self) -> int:
        stmt = select(func.count()).select_from(schema.alerts).where(schema.alerts.c.org == self.org)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def get(self, alert_id: str) -> Alert | None:
        t = schema.alerts
        with self.engine.connect() as conn:
            body = conn.execute(select(t.c.body).where(t.c.org == self.org, t.c.id == alert_id)).scalar()
        return None if body is None else alert_from_dict(body)

    def list_bodies(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        min_severity: int | None = None,
        detector: str | None = None,
        since: datetime | None = None,
        incident_id: str | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Stored alert bodies (the codec's dicts), oldest first, filtered and paged — for hot reads."""
        t = schema.alerts
        stmt = select(t.c.body).where(t.c.org == self.org)
        if min_severity is not None:
            stmt = stmt.where(t.c.severity >= min_severity)
        if detector:
            stmt = stmt.where(t.c.detector == detector)
        if since is not None:
            stmt = stmt.where(t.c.ts >= since)
        if incident_id is not None:
            stmt = stmt.where(t.c.incident_id == incident_id)
        stmt = stmt.order_by(t.c.ts, t.c.id).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [body for (body,) in conn.execute(stmt)]

    def list(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        min_severity: int | None = None,
        detector: str | None = None,
        since: datetime | None = None,
        incident_id: str | None = None,
    ) -> builtins.list[Alert]:
        """Alerts, oldest first, filtered and paged."""
        bodies = self.list_bodies(
            limit=limit,
            offset=offset,
            min_severity=min_severity,
            detector=detector,
            since=since,
            incident_id=incident_id,
        )
        return [alert_from_dict(b) for b in bodies]

    def all(self) -> builtins.list[Alert]:
        t = schema.alerts
        stmt = select(t.c.body).where(t.c.org == self.org).order_by(t.c.ts, t.c.id)
        with self.engine.connect() as conn:
            return [alert_from_dict(b) for (b,) in conn.execute(stmt)]

    def assign(self, incident_id: str, alert_ids: Iterable[str]) -> None:
        ids = list(alert_ids)
        t = schema.alerts
        with self.engine.begin() as conn:
            for start in range(0, len(ids), _BATCH):
                conn.execute(
                    update(t)
                    .where(t.c.org == self.org, t.c.id.in_(ids[start : start + _BATCH]))
                    .values(incident_id=incident_id)
                )


@dataclass
class IncidentRepository:
    engine: Engine
    org: str

    def upsert_many(self, items: Iterable[Incident]) -> None:
        """Insert or replace incidents (an incident grows as alerts arrive) and link their alerts.

        An analyst's status survives a re-correlation; an incident left without alerts because its
        alerts moved into another (a merge) is deleted, so no alert is counted twice.
        """
        items = list(items)
        t, ti = schema.alerts, schema.incidents
        ids = [i.id for i in items]
        alert_ids = [a for i in items for a in i.alert_ids]
        with self.engine.begin() as conn:
            status: dict[str, str] = {}
            previous: set[str] = set()
            for start in range(0, len(ids), _BATCH):
                chunk = ids[start : start + _BATCH]
                q = select(ti.c.id, ti.c.status).where(ti.c.org == self.org, ti.c.id.in_(chunk))
                status.update({r.id: r.status for r in conn.execute(q)})
            for start in range(0, len(alert_ids), _BATCH):
                chunk = alert_ids[start : start + _BATCH]
                q2 = select(t.c.incident_id).where(t.c.org == self.org, t.c.id.in_(chunk)).distinct()
                previous |= {r for (r,) in conn.execute(q2) if r is not None}
            rows = []
            for inc in items:
                body = to_dict(inc)
                body["status"] = status.get(inc.id, inc.status.value)
                rows.append(
                    {
                        "org": self.org,
                        "id": inc.id,
                        "first_seen": inc.first_seen,
                        "last_seen": inc.last_seen,
                        "severity": int(inc.severity),
                        "score": inc.score,
                        "status": body["status"],
                        "body": body,
                    }
                )
            _upsert(conn, ti, _dedupe(rows), ("org", "id"))
            for inc in items:
                members = list(inc.alert_ids)
                for start in range(0, len(members), _BATCH):
                    conn.execute(
                        update(t)
                        .where(t.c.org == self.org, t.c.id.in_(members[start : start + _BATCH]))
                        .values(incident_id=inc.id)
                    )
            for old in previous - set(ids):
                left = conn.execute(
                    select(func.count()).select_from(t).where(t.c.org == self.org, t.c.incident_id == old)
                ).scalar_one()
                if not left:
                    conn.execute(delete(ti).where(ti.c.org == self.org, ti.c.id == old))

    def replace_all(self, items: Iterable[Incident]) -> None:
        """Make the stored incidents exactly ``items`` (after a re-correlation that merged or split)."""
        items = list(items)
        keep = {i.id for i in items}
        t = schema.incidents
        with self.engine.begin() as conn:
            existing = {r for (r,) in conn.execute(select(t.c.id).where(t.c.org == self.org))}
            stale = list(existing - keep)
            for start in range(0, len(stale), _BATCH):
                conn.execute(delete(t).where(t.c.org == self.org, t.c.id.in_(stale[start : start + _BATCH])))
        self.upsert_many(items)

    def get(self, incident_id: str) -> Incident | None:
        t = schema.incidents
        with self.engine.connect() as conn:
            body = conn.execute(select(t.c.body).where(t.c.org == self.org, t.c.id == incident_id)).scalar()
        return None if body is None else incident_from_dict(body)

    def list(self, *, limit: int = 100, offset: int = 0, status: str | None = None) -> list[Incident]:
        t = schema.incidents
        stmt = select(t.c.body).where(t.c.org == self.org)
        if status:
            stmt = stmt.where(t.c.status == status)
        stmt = stmt.order_by(t.c.severity.desc(), t.c.score.desc(), t.c.id).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [incident_from_dict(b) for (b,) in conn.execute(stmt)]

    def count(self) -> int:
        t = schema.incidents
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(t).where(t.c.org == self.org)).scalar_one()
            )

    def set_status(self, incident_id: str, status: str) -> bool:
        inc = self.get(incident_id)
        if inc is None:
            return False
        body = to_dict(inc)
        body["status"] = status
        t = schema.incidents
        with self.engine.begin() as conn:
            conn.execute(
                update(t).where(t.c.org == self.org, t.c.id == incident_id).values(status=status, body=body)
            )
        return True


@dataclass
class AssetRepository:
    engine: Engine
    org: str

    def upsert_many(self, items: Iterable[Asset]) -> None:
        rows = _dedupe(
            {
                "org": self.org,
                "id": a.id,
                "name": a.name,
                "ip": a.ip,
                "zone": a.zone,
                "criticality": int(a.criticality),
                "body": to_dict(a),
            }
            for a in items
        )
        with self.engine.begin() as conn:
            _upsert(conn, schema.assets, rows, ("org", "id"))

    def list(self) -> list[Asset]:
        t = schema.assets
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.body).where(t.c.org == self.org).order_by(t.c.id))
            return [asset_from_dict(b) for (b,) in rows]

    def by_ip(self, ip: str) -> Asset | None:
        t = schema.assets
        with self.engine.connect() as conn:
            body = conn.execute(select(t.c.body).where(t.c.org == self.org, t.c.ip == ip).limit(1)).scalar()
        return None if body is None else asset_from_dict(body)

    def count(self) -> int:
        t = schema.assets
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(t).where(t.c.org == self.org)).scalar_one()
            )


@dataclass
class AuditRepository:
    engine: Engine
    org: str

    def record(self, actor: str, action: str, target: str | None = None, **detail: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                schema.audit.insert().values(
                    org=self.org,
                    ts=datetime.now(UTC),
                    actor=actor,
                    action=action,
                    target=target,
                    detail=detail,
                )
            )

    def list(
        self,
        limit: int = 100,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_seq: int | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first; ``action`` ending in ``.`` matches every action of that family (``share.``)."""
        t = schema.audit
        stmt = select(t).where(t.c.org == self.org)
        if actor is not None:
            stmt = stmt.where(t.c.actor == actor)
        if action is not None:
            stmt = stmt.where(
                t.c.action.startswith(action, autoescape=True)
                if action.endswith(".")
                else t.c.action == action
            )
        if target is not None:
            stmt = stmt.where(t.c.target == target)
        if since is not None:
            stmt = stmt.where(t.c.ts >= since)
        if until is not None:
            stmt = stmt.where(t.c.ts < until)
        if before_seq is not None:
            stmt = stmt.where(t.c.seq < before_seq)
        stmt = stmt.order_by(t.c.seq.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]


class Store:
    """All repositories of one organisation over one database."""

    def __init__(self, engine: Engine, org: str = DEFAULT_ORG) -> None:
        self.engine = engine
        self.org = org
        self.events = EventRepository(engine, org)
        self.alerts = AlertRepository(engine, org)
        self.incidents = IncidentRepository(engine, org)
        self.assets = AssetRepository(engine, org)
        self.audit = AuditRepository(engine, org)

    @classmethod
    def open(cls, url: str, org: str = DEFAULT_ORG, *, upgrade: bool = True) -> Store:
        engine = open_engine(url)
        if upgrade:
            try:
                migrate(engine)
            except OperationalError as exc:
                raise StoreError(f"cannot migrate database: {str(exc.orig).splitlines()[0]}") from None
        return cls(engine, org)

    def for_org(self, org: str) -> Store:
        """The same database seen by another organisation."""
        return Store(self.engine, org)

    def close(self) -> None:
        self.engine.dispose()
