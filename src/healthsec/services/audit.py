"""Audit-log use case: who did what, when, filtered by actor, action (or action family), target and time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from healthsec.services.common import Invalid

if TYPE_CHECKING:
    from healthsec.store import Store

MAX_ROWS = 1000


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """A filter over the audit log; None fields do not filter. ``action`` ending in ``.`` is a family."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200
    before: int | None = None  # the ``seq`` the next (older) page starts below


def _utc(ts: datetime | None, name: str) -> datetime | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        raise Invalid(f"{name} needs a time zone (e.g. 2026-03-03T10:00+01:00 or ...Z), not {ts.isoformat()}")
    return ts.astimezone(UTC)


def audit_log(store: Store, query: AuditQuery | None = None) -> list[dict[str, Any]]:
    """Audit rows of the organisation, newest first, each with ``seq``, ``ts`` (UTC), actor, action,
    target and detail. :class:`Invalid` for a naive time, a reversed range or a limit out of 1..1000."""
    q = query or AuditQuery()
    if not 1 <= q.limit <= MAX_ROWS:
        raise Invalid(f"limit must be 1..{MAX_ROWS}, not {q.limit}")
    since, until = _utc(q.since, "since"), _utc(q.until, "until")
    if since is not None and until is not None and since >= until:
        raise Invalid(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")
    rows = store.audit.list(
        q.limit,
        actor=q.actor or None,
        action=q.action or None,
        target=q.target or None,
        since=since,
        until=until,
        before_seq=q.before,
    )
    out = []
    for r in rows:
        ts = r["ts"]
        if isinstance(ts, datetime) and ts.tzinfo is None:  # SQLite hands back the UTC wall time
            ts = ts.replace(tzinfo=UTC)
        out.append({k: v for k, v in r.items() if k != "org"} | {"ts": ts})
    return out
