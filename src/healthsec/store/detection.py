"""Detection state per organisation (learning start, cursor, lease), learnt baselines, dead letters."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from healthsec.store.schema import metadata
from healthsec.store.sql import Store

detection_state = Table(
    "detection_state",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("learning_start", DateTime(timezone=True), nullable=True),
    Column("cursor", DateTime(timezone=True), nullable=True),
    Column("max_ts", DateTime(timezone=True), nullable=True),
    Column("owner", String(64), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("status", JSON, nullable=True),
)

detector_dead_letters = Table(
    "detector_dead_letters",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("detector", String(128), nullable=False),
    Column("event_id", String(128), nullable=True),
    Column("reason", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, default=1),
    Index("ix_dead_letters_org_detector", "org", "detector"),
)

# The learnt state of each learning detector (JSON, never pickled), written when its learning period
# ends: a worker that restarts or takes over loads it instead of refitting.
detector_baselines = Table(
    "detector_baselines",
    metadata,
    Column("org", String(64), primary_key=True),
    Column("detector", String(128), primary_key=True),
    Column("version", String(64), nullable=False),
    Column("state", JSON, nullable=False),
    Column("learnt_at", DateTime(timezone=True), nullable=False),
)


def _utc(ts: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything in healthsec is UTC."""
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class DetectionState:
    org: str
    learning_start: datetime | None
    cursor: datetime | None
    max_ts: datetime | None
    owner: str | None
    lease_until: datetime | None
    status: list[dict[str, object]] | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    detector: str
    event_id: str | None
    reason: str
    at: datetime


class DetectionRepository:
    """One row per organisation; the lease makes one worker at a time run detection for it."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        self.org = store.org

    def _ensure(self, conn: object) -> None:
        ins = (postgresql if self.engine.dialect.name == "postgresql" else sqlite).insert(detection_state)
        conn.execute(ins.values(org=self.org).on_conflict_do_nothing(index_elements=["org"]))  # type: ignore[attr-defined]

    def get(self) -> DetectionState:
        with self.engine.begin() as conn:
            self._ensure(conn)
            r = conn.execute(select(detection_state).where(detection_state.c.org == self.org)).one()
        return DetectionState(
            r.org,
            _utc(r.learning_start),
            _utc(r.cursor),
            _utc(r.max_ts),
            r.owner,
            _utc(r.lease_until),
            r.status,
        )

    def note_ingest(self, max_ts: datetime) -> None:
        """Events up to ``max_ts`` were stored: move the organisation's high-water mark forward."""
        t = detection_state
        with self.engine.begin() as conn:
            self._ensure(conn)
            conn.execute(
                update(t)
                .where(t.c.org == self.org, (t.c.max_ts.is_(None)) | (t.c.max_ts < max_ts))
                .values(max_ts=max_ts)
            )

    def acquire(self, owner: str, seconds: float) -> bool:
        """Take or renew the detection lease; False while another live owner holds it."""
        t = detection_state
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            self._ensure(conn)
            res = conn.execute(
                update(t)
                .where(
                    t.c.org == self.org,
                    (t.c.owner.is_(None)) | (t.c.owner == owner) | (t.c.lease_until < now),
                )
                .values(owner=owner, lease_until=now + timedelta(seconds=seconds))
            )
            return bool(res.rowcount)

    def release(self, owner: str) -> None:
        t = detection_state
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.org == self.org, t.c.owner == owner).values(owner=None))

    def advance(
        self, owner: str | None, cursor: datetime, learning_start: datetime, status: list[dict[str, object]]
    ) -> None:
        """Record the processed cursor (only while holding the lease, when ``owner`` is given)."""
        t = detection_state
        cond = [t.c.org == self.org] + ([t.c.owner == owner] if owner else [])
        with self.engine.begin() as conn:
            self._ensure(conn)
            conn.execute(
                update(t).where(*cond).values(cursor=cursor, learning_start=learning_start, status=status)
            )

    def reset(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(detection_state).where(detection_state.c.org == self.org))
            conn.execute(delete(detector_baselines).where(detector_baselines.c.org == self.org))

    # ---- learnt baselines ----------------------------------------------------------------------
    def save_baselines(self, items: Iterable[tuple[str, str, dict[str, object]]]) -> int:
        """Store (detector, version, JSON state) learnt for this organisation; a newer one replaces it."""
        rows = [
            {"org": self.org, "detector": d, "version": v, "state": st, "learnt_at": datetime.now(UTC)}
            for d, v, st in items
        ]
        if not rows:
            return 0
        t = detector_baselines
        ins = (postgresql if self.engine.dialect.name == "postgresql" else sqlite).insert(t)
        with self.engine.begin() as conn:
            conn.execute(
                ins.values(rows).on_conflict_do_update(
                    index_elements=["org", "detector"],
                    set_={
                        "version": ins.excluded.version,
                        "state": ins.excluded.state,
                        "learnt_at": ins.excluded.learnt_at,
                    },
                )
            )
        return len(rows)

    def baselines(self) -> dict[str, tuple[str, dict[str, object]]]:
        """detector -> (version, state) of every baseline stored for this organisation."""
        t = detector_baselines
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.detector, t.c.version, t.c.state).where(t.c.org == self.org))
            return {r.detector: (r.version, dict(r.state)) for r in rows}

    def orgs_behind(self) -> list[str]:
        """Organisations whose stored events run past their detection cursor (work to do)."""
        t = detection_state
        q = select(t.c.org).where(
            t.c.max_ts.is_not(None), (t.c.cursor.is_(None)) | (t.c.cursor <= t.c.max_ts)
        )
        with self.engine.connect() as conn:
            return [r for (r,) in conn.execute(q)]

    # ---- dead letters ------------------------------------------------------------------------
    def add_dead_letters(self, items: Iterable[tuple[str, str | None, str]]) -> int:
        rows = [
            {
                "org": self.org,
                "id": uuid.uuid5(uuid.NAMESPACE_URL, f"{self.org}|{d}|{e}").hex,
                "detector": d,
                "event_id": e,
                "reason": reason[:2000],
                "at": datetime.now(UTC),
                "attempts": 1,
            }
            for d, e, reason in items
        ]
        if not rows:
            return 0
        ins = (postgresql if self.engine.dialect.name == "postgresql" else sqlite).insert(
            detector_dead_letters
        )
        with self.engine.begin() as conn:
            conn.execute(
                ins.values(rows).on_conflict_do_update(
                    index_elements=["org", "id"],
                    set_={
                        "reason": ins.excluded.reason,
                        "at": ins.excluded.at,
                        "attempts": detector_dead_letters.c.attempts + 1,
                    },
                )
            )
        return len(rows)

    def dead_letters(self, detector: str | None = None, limit: int = 500) -> list[DeadLetter]:
        t = detector_dead_letters
        q = select(t).where(t.c.org == self.org)
        if detector:
            q = q.where(t.c.detector == detector)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(t.c.at.desc()).limit(limit)).all()
        return [DeadLetter(r.id, r.detector, r.event_id, r.reason, _utc(r.at) or r.at) for r in rows]

    def remove_dead_letters(self, ids: Sequence[str]) -> int:
        t = detector_dead_letters
        with self.engine.begin() as conn:
            return int(conn.execute(delete(t).where(t.c.org == self.org, t.c.id.in_(list(ids)))).rowcount)

    def count_dead_letters(self) -> int:
        t = detector_dead_letters
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(t).where(t.c.org == self.org)).scalar_one()
            )


def detection(store: Store) -> DetectionRepository:
    return DetectionRepository(store)
