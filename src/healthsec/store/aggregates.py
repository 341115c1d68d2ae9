"""Aggregate reads over incidents and alerts (counts, filtered pages) answered by the database itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from healthsec.model import Incident
from healthsec.model.codec import incident_from_dict
from healthsec.store import schema


def _utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@dataclass
class Aggregates:
    """Counts and filtered pages over one organisation's incidents and alerts."""

    engine: Engine
    org: str

    def incident_counts(self) -> dict[tuple[str, int], int]:
        """Incidents per (status, severity)."""
        t = schema.incidents
        stmt = (
            select(t.c.status, t.c.severity, func.count())
            .where(t.c.org == self.org)
            .group_by(t.c.status, t.c.severity)
        )
        with self.engine.connect() as conn:
            return {(s, int(v)): int(n) for s, v, n in conn.execute(stmt)}

    def alert_count(self) -> int:
        t = schema.alerts
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(t.c.org == self.org)).scalar_one())

    def latest_alert_ts(self) -> datetime | None:
        t = schema.alerts
        with self.engine.connect() as conn:
            ts = conn.execute(select(func.max(t.c.ts)).where(t.c.org == self.org)).scalar()
        return None if ts is None else _utc(ts)

    def alerts_per_hour(self, since: datetime, until: datetime) -> dict[datetime, int]:
        """Alerts per hour (UTC, floored) in [since, until), counted by the database."""
        t = schema.alerts
        if self.engine.dialect.name == "postgresql":
            hour: Any = func.date_trunc("hour", func.timezone("UTC", t.c.ts))
        else:
            hour = func.strftime("%Y-%m-%d %H:00:00", t.c.ts)
        stmt = (
            select(hour, func.count())
            .where(t.c.org == self.org, t.c.ts >= since, t.c.ts < until)
            .group_by(hour)
        )
        out: dict[datetime, int] = {}
        with self.engine.connect() as conn:
            for h, n in conn.execute(stmt):
                ts = h if isinstance(h, datetime) else datetime.fromisoformat(str(h))
                out[hour_floor(ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts)] = int(n)
        return out

    def alert_kinds_by_asset(
        self, keys: Mapping[str, str]
    ) -> dict[str, dict[tuple[str, str], tuple[int, int]]]:
        """Per asset: its alerts by (detector, title) -> (how many, worst severity), counted by the database.

        ``keys`` maps each lowercased asset key (id, name, IP) to its asset id. The figures are those of
        ``RiskModel.add_alerts`` over every stored alert: an alert naming two keys of one asset counts once.
        """
        t = schema.alert_entities
        stmt = (
            select(t.c.value, t.c.detector, t.c.title, func.count(), func.max(t.c.severity))
            .where(t.c.org == self.org)
            .group_by(t.c.value, t.c.detector, t.c.title)
        )
        if len(keys) <= 1000:
            stmt = stmt.where(t.c.value.in_(list(keys)))
        out: dict[str, dict[tuple[str, str], tuple[int, int]]] = {}
        shared: dict[tuple[str, str, str], list[str]] = {}  # (asset, detector, title) -> its values
        with self.engine.connect() as conn:
            for value, det, title, n, sev in conn.execute(stmt):
                aid = keys.get(value)
                if aid is None:
                    continue
                shared.setdefault((aid, det, title), []).append(value)
                had_n, had_sev = out.setdefault(aid, {}).get((det, title), (0, 0))
                out[aid][(det, title)] = (had_n + int(n), max(had_sev, int(sev)))
            for (aid, det, title), values in shared.items():
                if len(values) > 1:  # one alert may name several of them: count alerts, not rows
                    distinct = select(func.count(func.distinct(t.c.alert_id))).where(
                        t.c.org == self.org, t.c.detector == det, t.c.title == title, t.c.value.in_(values)
                    )
                    worst = out[aid][(det, title)][1]
                    out[aid][(det, title)] = (int(conn.execute(distinct).scalar_one()), worst)
        return out

    def event_times(self, ids: Sequence[str]) -> dict[str, datetime]:
        """The timestamps of the stored events among ``ids`` (one query per 500 ids)."""
        t = schema.events
        out: dict[str, datetime] = {}
        unique = list(dict.fromkeys(ids))
        with self.engine.connect() as conn:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                stmt = select(t.c.id, t.c.ts).where(t.c.org == self.org, t.c.id.in_(chunk))
                out.update({i: _utc(ts) for i, ts in conn.execute(stmt)})
        return out

    def incidents_page(
        self,
        *,
        statuses: Sequence[str] = (),
        min_severity: int | None = None,
        ids: Sequence[str] | None = None,
        exclude_ids: Sequence[str] = (),
        text: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
        newest_first: bool = False,
    ) -> tuple[list[Incident], int]:
        """One page of incidents (most severe first, or newest first) and how many match in all."""
        t = schema.incidents
        where: list[Any] = [t.c.org == self.org]
        if statuses:
            where.append(t.c.status.in_(list(statuses)))
        if min_severity is not None:
            where.append(t.c.severity >= min_severity)
        if ids is not None:
            where.append(t.c.id.in_(list(ids)))
        if exclude_ids:
            where.append(t.c.id.not_in(list(exclude_ids)))
        if since is not None:
            where.append(t.c.last_seen >= since)
        if text:
            like = f"%{text.lower()}%"
            where.append(func.lower(t.c.id).like(like) | func.lower(t.c.body["title"].as_string()).like(like))
        order = (
            (t.c.last_seen.desc(), t.c.id)
            if newest_first
            else (t.c.severity.desc(), t.c.score.desc(), t.c.id)
        )
        stmt = select(t.c.body).where(*where).order_by(*order).limit(limit).offset(offset)
        count = select(func.count()).select_from(t).where(*where)
        with self.engine.connect() as conn:
            items = [incident_from_dict(b) for (b,) in conn.execute(stmt)]
            total = int(conn.execute(count).scalar_one())
        return items, total

    def newest_incident(self) -> tuple[str, datetime] | None:
        """The id and last_seen of the most recently updated incident (the live view's change marker)."""
        t = schema.incidents
        stmt = (
            select(t.c.id, t.c.last_seen).where(t.c.org == self.org).order_by(t.c.last_seen.desc()).limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else (row[0], _utc(row[1]))


def hour_floor(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


HOUR = timedelta(hours=1)
