"""Overview: open incidents by severity, alerts per hour, riskiest assets, detectors, mean times (live)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from healthsec.services.overview import overview
from healthsec.web.core import ConsoleRoute, Signed
from healthsec.web.svg import bar_chart

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def show(console: Signed) -> HTMLResponse:
    o = overview(console.store, console.settings)
    return console.render(
        "overview.html", active="overview", title="Overview", o=o, chart=bar_chart(o.alerts_per_hour)
    )


@router.get("/live/overview", response_class=HTMLResponse)
def live(console: Signed) -> HTMLResponse:
    """The part of the overview that follows new incidents and alerts (htmx polls it)."""
    o = overview(console.store, console.settings, full=False)
    return console.render("_overview_live.html", o=o, chart=bar_chart(o.alerts_per_hour))
