"""Repositories for triage: analyst feedback on alerts, incident activity, and filtered alert queries."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Select, Text, cast, func, literal, select, tuple_

from healthsec.model.common import parse_utc
from healthsec.model.triage import ActivityKind, AlertFeedback, IncidentActivity, Verdict
from healthsec.store import schema, schema_triage
from healthsec.store.sql import Store

_BATCH = 500


def _utc(ts: datetime) -> datetime:
    """SQLite hands back naive datetimes for UTC columns: label them UTC."""
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSql:
    """The alert filters a database answers by itself (the indexed columns)."""

    detector: str | None = None
    min_severity: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    incident_id: str | None = None


@dataclass
class AlertQueries:
    """Filtered, counted reads of the alerts table, with each alert's incident link."""

    engine: Engine
    org: str

    def _where(self, stmt: Select[Any], f: AlertSql) -> Select[Any]:
        t = schema.alerts
        stmt = stmt.where(t.c.org == self.org)
        if f.detector:
            stmt = stmt.where(t.c.detector == f.detector)
        if f.min_severity is not None:
            stmt = stmt.where(t.c.severity >= f.min_severity)
        if f.since is not None:
            stmt = stmt.where(t.c.ts >= f.since)
        if f.until is not None:
            stmt = stmt.where(t.c.ts < f.until)
        if f.incident_id is not None:
            stmt = stmt.where(t.c.incident_id == f.incident_id)
        return stmt

    def count(self, f: AlertSql, *, at_most: int | None = None) -> int:
        """How many alerts match; with ``at_most``, counting stops there (a bounded read on a big store)."""
        if at_most is None:
            stmt = self._where(select(func.count()).select_from(schema.alerts), f)
        else:
            capped = self._where(select(schema.alerts.c.id), f).limit(at_most).subquery()
            stmt = select(func.count()).select_from(capped)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def position(self, alert_id: str) -> tuple[datetime, str] | None:
        """An alert's place in the list's (time, id) order: the key a keyset page starts after."""
        t = schema.alerts
        with self.engine.connect() as conn:
            row = conn.execute(select(t.c.ts, t.c.id).where(t.c.org == self.org, t.c.id == alert_id)).first()
        return None if row is None else (row[0], row[1])

    def _page(
        self, stmt: Select[Any], f: AlertSql, after: tuple[datetime, str] | None, newest_first: bool
    ) -> Select[Any]:
        t = schema.alerts
        stmt = self._where(stmt, f)
        if after is not None:
            key, at = tuple_(t.c.ts, t.c.id), tuple_(literal(after[0], t.c.ts.type), literal(after[1]))
            stmt = stmt.where(key < at if newest_first else key > at)
        return stmt.order_by(*((t.c.ts.desc(), t.c.id.desc()) if newest_first else (t.c.ts, t.c.id)))

    def bodies(
        self,
        f: AlertSql,
        *,
        limit: int,
        offset: int = 0,
        after: tuple[datetime, str] | None = None,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """One page of stored alert bodies (the codec's dicts), oldest first (or newest first).

        ``after`` is the (time, id) of the previous page's last alert: the page starts there through the
        (org, ts, id) index, however deep, where an offset would read and drop every row before it.
        """
        stmt = self._page(select(schema.alerts.c.body), f, after, newest_first).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [body for (body,) in conn.execute(stmt)]

    def raw_bodies(
        self, f: AlertSql, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[tuple[str, str]]:
        """One page of (body as its stored JSON text, id), oldest first: the API sends them unparsed."""
        t = schema.alerts
        stmt = self._page(select(cast(t.c.body, Text), t.c.id), f, after, False).limit(limit)
        with self.engine.connect() as conn:
            return [(body, i) for body, i in conn.execute(stmt)]

    def iter_bodies(
        self, f: AlertSql, *, after: tuple[datetime, str] | None = None, newest_first: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Every matching body in order, read in keyset pages (for filters the database cannot answer)."""
        while True:
            page = self.bodies(f, limit=_BATCH, after=after, newest_first=newest_first)
            yield from page
            if len(page) < _BATCH:
                return
            after = (parse_utc(page[-1]["ts"]), page[-1]["id"])

    def last_stored(self) -> int:
        """The position of the newest alert in storing order (``alerts.seq``; 0 when there is none)."""
        t = schema.alerts
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(t.c.seq)).where(t.c.org == self.org)).scalar() or 0)

    def stored_after(self, seq: int, *, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Up to ``limit`` (position, body) of the alerts stored after position ``seq``, in storing order: a
        keyset page on (org, seq), whatever the alerts' own times (a late alert with an earlier time
        comes once, after those stored before it)."""
        t = schema.alerts
        stmt = (
            select(t.c.seq, t.c.body).where(t.c.org == self.org, t.c.seq > seq).order_by(t.c.seq).limit(limit)
        )
        with self.engine.connect() as conn:
            return [(int(s), body) for s, body in conn.execute(stmt)]

    def incident_of(self, alert_ids: Iterable[str]) -> dict[str, str | None]:
        """Each known alert id with the incident it belongs to (None: not correlated yet)."""
        ids = list(dict.fromkeys(alert_ids))
        t = schema.alerts
        out: dict[str, str | None] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), _BATCH):
                chunk = ids[start : start + _BATCH]
                q = select(t.c.id, t.c.incident_id).where(t.c.org == self.org, t.c.id.in_(chunk))
                out.update({r.id: r.incident_id for r in conn.execute(q)})
        return out


def _feedback(row: Any) -> AlertFeedback:
    body = row.body
    return AlertFeedback(
        alert_id=row.alert_id,
        verdict=Verdict(row.verdict),
        actor=row.actor,
        ts=_utc(row.ts),
        detector=row.detector,
        detector_version=str(body.get("detector_version", "")),
        comment=body.get("comment"),
        features=body.get("features") or {},
    )


@dataclass
class FeedbackRepository:
    """Every triage decision is kept (who, when, why); the latest one per alert is the label."""

    engine: Engine
    org: str

    def add_many(self, items: Iterable[AlertFeedback]) -> int:
        rows = [
            {
                "org": self.org,
                "alert_id": f.alert_id,
                "ts": f.ts,
                "actor": f.actor,
                "verdict": f.verdict.value,
                "detector": f.detector,
                "body": {
                    "detector_version": f.detector_version,
                    "comment": f.comment,
                    "features": dict(f.features),
                },
            }
            for f in items
        ]
        if rows:
            with self.engine.begin() as conn:  # one transaction: a bulk triage is all or nothing
                conn.execute(schema_triage.alert_feedback.insert(), rows)
        return len(rows)

    def history(self, alert_id: str) -> list[AlertFeedback]:
        t = schema_triage.alert_feedback
        stmt = select(t).where(t.c.org == self.org, t.c.alert_id == alert_id).order_by(t.c.seq)
        with self.engine.connect() as conn:
            return [_feedback(r) for r in conn.execute(stmt)]

    def latest(self, alert_ids: Iterable[str] | None = None) -> dict[str, AlertFeedback]:
        """The current verdict of each alert (of the given ones, else of every triaged alert)."""
        t = schema_triage.alert_feedback
        newest = select(func.max(t.c.seq)).where(t.c.org == self.org).group_by(t.c.alert_id)
        out: dict[str, AlertFeedback] = {}
        with self.engine.connect() as conn:
            if alert_ids is None:
                rows = conn.execute(select(t).where(t.c.seq.in_(newest)))
                out.update({r.alert_id: _feedback(r) for r in rows})
                return out
            ids = list(dict.fromkeys(alert_ids))
            for start in range(0, len(ids), _BATCH):
                chunk = ids[start : start + _BATCH]
                q = select(t).where(t.c.seq.in_(newest.where(t.c.alert_id.in_(chunk))))
                out.update({r.alert_id: _feedback(r) for r in conn.execute(q)})
        return out


def _activity(row: Any) -> IncidentActivity:
    return IncidentActivity(
        incident_id=row.incident_id,
        kind=ActivityKind(row.kind),
        actor=row.actor,
        ts=_utc(row.ts),
        value=row.value,
    )


@dataclass
class ActivityRepository:
    """Status changes, assignments and comments on incidents, oldest first."""

    engine: Engine
    org: str

    def add(self, entry: IncidentActivity) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                schema_triage.incident_activity.insert().values(
                    org=self.org,
                    incident_id=entry.incident_id,
                    ts=entry.ts,
                    actor=entry.actor,
                    kind=entry.kind.value,
                    value=entry.value,
                )
            )

    def for_incident(self, incident_id: str) -> list[IncidentActivity]:
        t = schema_triage.incident_activity
        stmt = select(t).where(t.c.org == self.org, t.c.incident_id == incident_id).order_by(t.c.seq)
        with self.engine.connect() as conn:
            return [_activity(r) for r in conn.execute(stmt)]

    def assignees(self) -> dict[str, str | None]:
        """The current assignee of every incident ever assigned (None: unassigned again)."""
        t = schema_triage.incident_activity
        newest = (
            select(func.max(t.c.seq))
            .where(t.c.org == self.org, t.c.kind == ActivityKind.ASSIGN.value)
            .group_by(t.c.incident_id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.incident_id, t.c.value).where(t.c.seq.in_(newest)))
            return {r.incident_id: r.value for r in rows}


def alert_queries(store: Store) -> AlertQueries:
    return AlertQueries(store.engine, store.org)


def feedback(store: Store) -> FeedbackRepository:
    return FeedbackRepository(store.engine, store.org)


def activity(store: Store) -> ActivityRepository:
    return ActivityRepository(store.engine, store.org)
