"""Sharing repositories: TAXII collections, STIX object versions, status, partners, cursors, quarantine."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import (
    Engine,
    Integer,
    String,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from healthsec.model.common import parse_timestamp
from healthsec.store import schema_sharing as s
from healthsec.store.sharing_partners import (
    CursorRepository,
    PartnerRepository,
    QuarantineRepository,
    hash_secret,
    verify_secret,
)
from healthsec.store.sql import Store

__all__ = [
    "AddResult",
    "CollectionRepository",
    "CursorRepository",
    "ObjectPage",
    "ObjectRepository",
    "PartnerRepository",
    "QuarantineRepository",
    "Sharing",
    "StatusRepository",
    "StoredObject",
    "hash_secret",
    "taxii_timestamp",
    "verify_secret",
]

_BATCH = 500
_SUBMITTER = "x_healthsec_submitter"  # kept in a stored status body, stripped before it is served
Versions = Literal["last", "first", "all"] | tuple[str, ...]
_OTHER = s.share_objects.alias("other")  # built once: constructing an alias per query is measurable
_PAGE_STATEMENTS: dict[tuple[object, ...], Any] = {}  # (dialect, filter shape) -> statement with bindparams


def _utc(ts: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _added(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def taxii_timestamp(ts: datetime) -> str:
    """A TAXII/STIX timestamp with microseconds, e.g. ``2026-01-01T00:00:00.000001Z``."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def version_key(modified: str) -> str:
    """The stored form of a version: the timestamp with exactly three fraction digits, so versions
    compare as times in SQL (as text, ``...00Z`` sorted after ``...00.5Z``). STIX 2.1 makes
    ``created``/``modified`` precise to the millisecond, so versions are told apart at that precision;
    the usual spelling (``...00.000Z``) is kept as it is. Non-timestamps stay as given."""
    try:
        ts = parse_timestamp(modified)
    except ValueError:
        return modified
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _ins(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


@dataclass(frozen=True)
class StoredObject:
    """One stored STIX object version: its paging sequence, identity, version and raw JSON body."""

    seq: int
    id: str
    type: str
    spec_version: str
    modified: str
    date_added: datetime
    source: str | None
    confidence: int | None
    body: str


@dataclass(frozen=True)
class ObjectPage:
    """A page of objects in date-added order and whether more follow."""

    items: list[StoredObject]
    more: bool


@dataclass(frozen=True)
class AddResult:
    """Which object versions were newly stored and which were already there (same id and modified)."""

    added: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class CollectionRepository:
    engine: Engine
    org: str

    def create(
        self, title: str, *, description: str | None = None, alias: str | None = None, id: str | None = None
    ) -> dict[str, Any]:
        cid = id or str(uuid.uuid4())
        row = {
            "org": self.org,
            "id": cid,
            "title": title,
            "description": description,
            "alias": alias,
            "created": datetime.now(UTC),
        }
        with self.engine.begin() as conn:
            conn.execute(_ins(conn)(s.share_collections).values(row).on_conflict_do_nothing())
        found = self.get(cid)
        assert found is not None
        return found

    def ensure(self, alias: str, title: str, description: str | None = None) -> dict[str, Any]:
        """The collection with this alias, created on first use."""
        return self.get(alias) or self.create(title, description=description, alias=alias)

    def get(self, key: str) -> dict[str, Any] | None:
        """A collection by id or alias."""
        t = s.share_collections
        stmt = select(t).where(t.c.org == self.org, or_(t.c.id == key, t.c.alias == key)).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else self._public(row._mapping)

    def list(self) -> list[dict[str, Any]]:
        t = s.share_collections
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.org == self.org).order_by(t.c.created, t.c.id))
            return [self._public(r._mapping) for r in rows]

    @staticmethod
    def _public(row: Any) -> dict[str, Any]:
        out = {k: row[k] for k in ("id", "title", "description", "alias")}
        out["created"] = _utc(row["created"])
        return out


@dataclass
class ObjectRepository:
    engine: Engine
    org: str

    def add_many(
        self,
        collection_id: str,
        objects: Sequence[Mapping[str, Any]],
        *,
        source: str | None = None,
        conn: Connection | None = None,
    ) -> AddResult:
        """Store object versions in one transaction; a version already stored (id + modified) is skipped.

        ``date_added`` strictly increases within a collection (one microsecond apart) so that a
        client's ``added_after`` cursor never skips a sibling of the same batch.
        """
        if conn is None:
            with self.engine.begin() as own:
                return self.add_many(collection_id, objects, source=source, conn=own)
        t = s.share_objects
        if conn.dialect.name == "postgresql":
            # one writer per collection at a time until commit, so sequence and date_added order is
            # commit order and a reader's next/added_after cursor can never skip a later-committed row
            conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                {"k": f"share_objects/{self.org}/{collection_id}"},
            )
        last = conn.execute(
            select(func.max(t.c.date_added)).where(t.c.org == self.org, t.c.collection_id == collection_id)
        ).scalar()
        start = datetime.now(UTC)
        prev = _utc(last)
        if prev is not None and start <= prev:
            start = prev + timedelta(microseconds=1)
        seen: set[tuple[str, str]] = set()
        rows: list[dict[str, Any]] = []
        result = AddResult()
        for obj in objects:
            key = (str(obj["id"]), version_key(str(obj.get("modified") or obj.get("created") or "")))
            if key in seen:
                result.duplicates.append(key)
                continue
            seen.add(key)
            confidence = obj.get("confidence")
            rows.append(
                {
                    "org": self.org,
                    "collection_id": collection_id,
                    "id": key[0],
                    "type": str(obj["type"]),
                    "spec_version": str(obj.get("spec_version", "2.1")),
                    "modified": key[1],
                    "date_added": start + timedelta(microseconds=len(rows)),
                    "source": source,
                    "confidence": confidence if isinstance(confidence, int) else None,
                    "body": orjson.dumps(obj).decode(),
                }
            )
        if rows and conn.dialect.name == "sqlite":
            new = self._insert_sqlite(conn, collection_id, rows)
        elif rows:
            # one statement executed with many parameter sets: SQLAlchemy's "insertmanyvalues" batches it
            # (with RETURNING) far faster than compiling a fresh multi-VALUES statement per chunk
            stmt = (
                _ins(conn)(t)
                .on_conflict_do_nothing(index_elements=["org", "collection_id", "id", "modified"])
                .returning(t.c.id, t.c.modified)
            )
            new = {(r[0], r[1]) for r in conn.execute(stmt, rows)}
        for row in rows:
            key = (row["id"], row["modified"])
            (result.added if key in new else result.duplicates).append(key)
        return result

    def _insert_sqlite(
        self, conn: Connection, collection_id: str, rows: list[dict[str, Any]]
    ) -> set[tuple[str, str]]:
        """SQLite: find the versions already stored, then one C-level executemany of INSERT OR IGNORE.

        SQLAlchemy's per-row parameter processing (DateTime binding, RETURNING) was most of an import's
        cost; the sqlite3 driver's executemany is several times faster for the same rows.
        """
        t = s.share_objects
        have: set[tuple[str, str]] = set()
        ids = sorted({r["id"] for r in rows})
        for begin in range(0, len(ids), _BATCH):
            stmt = select(t.c.id, t.c.modified).where(
                t.c.org == self.org,
                t.c.collection_id == collection_id,
                t.c.id.in_(ids[begin : begin + _BATCH]),
            )
            have.update((r[0], r[1]) for r in conn.execute(stmt))
        fresh = [r for r in rows if (r["id"], r["modified"]) not in have]
        if not fresh:
            return set()
        conn.exec_driver_sql(
            "INSERT OR IGNORE INTO share_objects (org, collection_id, id, type, spec_version, modified, "
            "date_added, source, confidence, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r["org"],
                    r["collection_id"],
                    r["id"],
                    r["type"],
                    r["spec_version"],
                    r["modified"],
                    r["date_added"].replace(tzinfo=None).isoformat(" ", "microseconds"),
                    r["source"],
                    r["confidence"],
                    r["body"],
                )
                for r in fresh
            ],
        )
        return {(r["id"], r["modified"]) for r in fresh}

    def page(
        self,
        collection_id: str,
        *,
        added_after: datetime | None = None,
        ids: Sequence[str] = (),
        types: Sequence[str] = (),
        versions: Versions = "last",
        spec_versions: Sequence[str] = (),
        limit: int = 100,
        after_seq: int | None = None,
    ) -> ObjectPage:
        """Objects in the order they were added, after ``after_seq`` (the ``next`` token) if given."""
        shape = (
            added_after is not None,
            after_seq is not None,
            bool(ids),
            bool(types),
            bool(spec_versions),
            versions if isinstance(versions, str) else "some",
        )
        key = (self.engine.dialect.name, *shape)
        stmt = _PAGE_STATEMENTS.get(key)
        if stmt is None:
            stmt = _PAGE_STATEMENTS[key] = self._page_statement(*shape)
        params: dict[str, Any] = {"org": self.org, "cid": collection_id, "lim": limit + 1}
        if added_after is not None:
            params["after"] = added_after
        if after_seq is not None:
            params["seq"] = after_seq
        if ids:
            params["ids"] = list(ids)
        if types:
            params["types"] = list(types)
        if spec_versions:
            params["specs"] = list(spec_versions)
        if isinstance(versions, tuple):
            params["mods"] = [version_key(v) for v in versions]
        with self.engine.connect() as conn:
            rows = conn.execute(stmt, params).all()
        items = [
            StoredObject(r[0], r[1], r[2], r[3], r[4], _added(r[5]), r[6], r[7], r[8]) for r in rows[:limit]
        ]
        return ObjectPage(items, len(rows) > limit)

    def _page_statement(
        self, added_after: bool, after_seq: bool, ids: bool, types: bool, specs: bool, versions: str
    ) -> Any:
        """The page query for one combination of filters, built once with bound parameters (building
        SQLAlchemy expressions per request cost more than running the query)."""
        t = s.share_objects
        conds: list[ColumnElement[bool]] = [
            t.c.org == bindparam("org"),
            t.c.collection_id == bindparam("cid"),
        ]
        if added_after:
            conds.append(t.c.date_added > bindparam("after", type_=t.c.date_added.type))
        if after_seq:
            conds.append(t.c.seq > bindparam("seq"))
        if ids:
            conds.append(t.c.id.in_(bindparam("ids", expanding=True)))
        if types:
            conds.append(t.c.type.in_(bindparam("types", expanding=True)))
        if specs:
            conds.append(t.c.spec_version.in_(bindparam("specs", expanding=True)))
        if versions == "some":
            conds.append(t.c.modified.in_(bindparam("mods", expanding=True)))
        elif versions in ("last", "first"):
            newer = (
                _OTHER.c.modified > t.c.modified if versions == "last" else _OTHER.c.modified < t.c.modified
            )
            conds.append(
                ~exists().where(
                    _OTHER.c.org == t.c.org,
                    _OTHER.c.collection_id == t.c.collection_id,
                    _OTHER.c.id == t.c.id,
                    newer,
                )
            )
        # date_added is read as text and parsed by datetime.fromisoformat: SQLAlchemy's SQLite DateTime
        # parser was a large share of a page's cost
        added = (
            type_coerce(t.c.date_added, String) if self.engine.dialect.name == "sqlite" else t.c.date_added
        )
        return (
            select(
                t.c.seq,
                t.c.id,
                t.c.type,
                t.c.spec_version,
                t.c.modified,
                added,
                t.c.source,
                t.c.confidence,
                t.c.body,
            )
            .where(and_(*conds))
            .order_by(t.c.seq)
            .limit(bindparam("lim", type_=Integer))
        )

    def ids(self, collection_id: str, *, source: str | None = None) -> list[str]:
        """Distinct object ids of a collection (only those ``source`` sent, given one)."""
        t = s.share_objects
        conds = [t.c.org == self.org, t.c.collection_id == collection_id]
        if source is not None:
            conds.append(t.c.source == source)
        with self.engine.connect() as conn:
            return [str(r[0]) for r in conn.execute(select(t.c.id).where(*conds).distinct())]

    def count(self, collection_id: str) -> int:
        t = s.share_objects
        stmt = select(func.count()).where(t.c.org == self.org, t.c.collection_id == collection_id)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def delete(self, collection_id: str, object_id: str, versions: Versions = "all") -> int:
        t = s.share_objects
        conds: list[ColumnElement[bool]] = [
            t.c.org == self.org,
            t.c.collection_id == collection_id,
            t.c.id == object_id,
        ]
        if isinstance(versions, tuple):
            conds.append(t.c.modified.in_([version_key(v) for v in versions]))
        with self.engine.begin() as conn:
            return conn.execute(delete(t).where(and_(*conds))).rowcount or 0


@dataclass
class StatusRepository:
    engine: Engine
    org: str

    def create(
        self,
        collection_id: str,
        *,
        successes: Iterable[Mapping[str, Any]],
        failures: Iterable[Mapping[str, Any]],
        conn: Connection | None = None,
        submitter: str | None = None,
    ) -> dict[str, Any]:
        """Record a finished add-objects request (we store synchronously, so nothing stays pending).

        ``submitter`` (the partner who sent it) is kept with the stored body, never returned: only that
        partner may read the status (see :meth:`get`)."""
        ok, bad = list(successes), list(failures)
        now = datetime.now(UTC)
        status = {
            "id": str(uuid.uuid4()),
            "status": "complete",
            "request_timestamp": taxii_timestamp(now),
            "total_count": len(ok) + len(bad),
            "success_count": len(ok),
            "successes": ok,
            "failure_count": len(bad),
            "failures": bad,
            "pending_count": 0,
            "pendings": [],
        }
        row = {
            "org": self.org,
            "id": status["id"],
            "collection_id": collection_id,
            "status": "complete",
            "request_timestamp": now,
            "total_count": status["total_count"],
            "success_count": len(ok),
            "failure_count": len(bad),
            "pending_count": 0,
            "body": status if submitter is None else {**status, _SUBMITTER: submitter},
        }
        if conn is None:
            with self.engine.begin() as own:
                own.execute(s.share_status.insert().values(row))
        else:
            conn.execute(s.share_status.insert().values(row))
        return status

    def get(self, status_id: str, *, submitter: str | None = None) -> dict[str, Any] | None:
        """The status by id; given ``submitter``, only a status that partner submitted (else None)."""
        t = s.share_status
        with self.engine.connect() as conn:
            body = conn.execute(select(t.c.body).where(t.c.org == self.org, t.c.id == status_id)).scalar()
        if body is None:
            return None
        out = dict(body)
        owner = out.pop(_SUBMITTER, None)
        if submitter is not None and owner != submitter:
            return None
        return out


class Sharing:
    """The sharing repositories of one organisation over one database."""

    def __init__(self, engine: Engine, org: str) -> None:
        self.engine = engine
        self.org = org
        self.collections = CollectionRepository(engine, org)
        self.objects = ObjectRepository(engine, org)
        self.status = StatusRepository(engine, org)
        self.partners = PartnerRepository(engine, org)
        self.cursors = CursorRepository(engine, org)
        self.quarantine = QuarantineRepository(engine, org)

    @classmethod
    def of(cls, store: Store) -> Sharing:
        return cls(store.engine, store.org)
