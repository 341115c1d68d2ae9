"""Audit-log page: who did what, when, filtered by actor, action (``share.`` for a family), target, time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from healthsec.services.audit import AuditQuery, audit_log
from healthsec.services.common import Invalid
from healthsec.store.auth import Role
from healthsec.web.core import ConsoleRoute, Forbidden, Signed

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Text = Annotated[str, Query(max_length=256)]
PAGE = 200
READERS = (Role.ADMIN, Role.AUDITOR)  # as GET /api/v1/audit


def parse_time(text: str, name: str) -> datetime | None:
    """A filter time: ISO 8601; a value without offset (the browser's picker) is read as UTC."""
    from healthsec.web.pages.cases import parse_when

    try:
        return parse_when(text.strip(), name)
    except Invalid:
        raise
    except ValueError as exc:
        raise Invalid(f"{name}: {exc}") from None


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    console: Signed,
    actor: Text = "",
    action: Text = "",
    target: Text = "",
    since: Text = "",
    until: Text = "",
    before: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    if console.viewer.role not in READERS:
        raise Forbidden(f"a {console.viewer.role.value} token may not read the audit log (admin or auditor)")
    query = AuditQuery(
        actor=actor.strip() or None,
        action=action.strip() or None,
        target=target.strip() or None,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        limit=PAGE,
        before=before,
    )
    rows = audit_log(console.store, query)
    older = rows[-1]["seq"] if len(rows) == PAGE else None
    filters = {"actor": actor, "action": action, "target": target, "since": since, "until": until}
    return console.render(
        "audit.html", active="audit", title="Audit log", rows=rows, filters=filters, older=older
    )
