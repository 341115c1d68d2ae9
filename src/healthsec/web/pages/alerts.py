"""Alerts: search and filter (detector, severity, asset, technique, time, verdict), bulk triage, live rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from healthsec.model import Severity
from healthsec.services import alerts as alert_use
from healthsec.services.common import Invalid
from healthsec.web.core import Changer, ConsoleRoute, Signed, form_fields, one, severity_field, triage_ticked

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
PAGE = 50
Text = Annotated[str | None, Query(max_length=256)]


def _when(value: str | None, name: str) -> datetime | None:
    """A datetime-local field (taken as UTC) or an ISO 8601 time; a clear error otherwise."""
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name} {value!r} is not a date and time (YYYY-MM-DDTHH:MM)") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


Severity_ = Annotated[str | None, Query(max_length=2)]
Technique = Annotated[str | None, Query(max_length=32)]
When = Annotated[str | None, Query(max_length=40)]
VerdictQ = Annotated[str | None, Query(pattern="^(|true_positive|false_positive|untriaged)$")]


COUNT_UP_TO = 10_000  # the list says "10,000+" beyond: counting every alert of a big store costs seconds


def _listing(
    console: Signed,
    detector: Text = None,
    min_severity: Severity_ = None,
    asset: Text = None,
    technique: Technique = None,
    since: When = None,
    until: When = None,
    verdict: VerdictQ = None,
    after: Annotated[str | None, Query(max_length=128)] = None,
    before: Annotated[str | None, Query(max_length=128)] = None,
) -> dict[str, Any]:
    """The list's query (from the URL) and its page of alerts, newest first.

    Keyset pages: ``after`` (an alert id) shows the older alerts that follow it, ``before`` the newer ones
    that precede it; neither: the newest page (the one that follows live).
    """
    flt = alert_use.AlertFilter(
        detector=(detector or "").strip() or None,
        min_severity=None if (level := severity_field(min_severity)) is None else Severity(level),
        asset=(asset or "").strip() or None,
        technique=(technique or "").strip() or None,
        since=_when(since, "since"),
        until=_when(until, "until"),
        verdict=verdict or None,
    )
    store = console.store
    rows: list[alert_use.AlertRow] = []
    older: str | None = None
    if after:
        page = alert_use.alert_rows(store, flt, limit=PAGE, after=after, newest_first=True)
        rows, older = page.items, page.next_after
    elif before:  # the PAGE alerts just newer than it (time order), shown newest first
        up = alert_use.alert_rows(store, flt, limit=PAGE + 1, after=before)
        if len(up.items) > PAGE:
            rows = list(reversed(up.items[:PAGE]))
            older = rows[-1].alert.id
    newest = not after and not rows
    if newest:  # no key, or nothing newer than a full page: the newest page, which follows live
        page = alert_use.alert_rows(store, flt, limit=PAGE, newest_first=True)
        rows, older = page.items, page.next_after
    shown = alert_use.count_alerts(store, flt, at_most=COUNT_UP_TO + 1)
    f = {
        "detector": detector or "",
        "min_severity": level,
        "asset": asset or "",
        "technique": technique or "",
        "since": since or "",
        "until": until or "",
        "verdict": verdict or "",
    }
    qs = urlencode({k: ("" if v is None else v) for k, v in f.items()})
    return {
        "rows": rows,
        "f": f,
        "qs": qs,
        "total": shown,
        "total_label": f"{COUNT_UP_TO:,}+" if shown > COUNT_UP_TO else f"{shown:,}",
        "newest": newest,
        "older": older,
        "newer": rows[0].alert.id if rows and not newest else None,
        "here": urlencode({"after": after} if after else {"before": before} if before and not newest else {}),
    }


Listing = Annotated[dict[str, Any], Depends(_listing)]


@router.get("/alerts", response_class=HTMLResponse)
def list_page(console: Signed, listing: Listing) -> HTMLResponse:
    return console.render(
        "alerts.html", active="alerts", title="Alerts", severities=list(Severity), **listing
    )


@router.get("/live/alerts", response_class=HTMLResponse)
def live_rows(console: Signed, listing: Listing) -> HTMLResponse:
    """The rows again (htmx polls them only while the viewer is on the newest page)."""
    return console.render("_alert_rows.html", **listing)


@router.post("/alerts/triage")
async def bulk_triage(console: Changer) -> Response:
    """Mark every ticked alert true or false positive at once (all or none; kept as training feedback)."""
    fields = await form_fields(console.request)
    triage_ticked(console, fields)
    back = one(fields, "back", "/alerts")
    return RedirectResponse(back if back.startswith("/alerts") else "/alerts", status_code=303)
