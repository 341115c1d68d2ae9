"""Repositories for triage: analyst feedback on alerts, incident activity, and filtered alert queries."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Select, func, select

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

    def count(self, f: AlertSql) -> int:
        stmt = self._where(select(func.count()).select_from(schema.alerts), f)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def bodies(self, f: AlertSql, *, limit: int, offset: int) -> list[dict[str, Any]]:
        """One page of stored alert bodies (the codec's dicts), oldest first."""
        t = schema.alerts
        stmt = self._where(select(t.c.body), f).order_by(t.c.ts, t.c.id).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [body for (body,) in conn.execute(stmt)]

    def iter_bodies(self, f: AlertSql) -> Iterator[dict[str, Any]]:
        """Every matching body, oldest first, read in pages (for filters the database cannot answer)."""
        offset = 0
        while True:
            page = self.bodies(f, limit=_BATCH, offset=offset)
            yield from page
            if len(page) < _BATCH:
                return
            offset += _BATCH

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
