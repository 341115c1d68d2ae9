"""Incidents: the filterable list and the incident page with its actions (status, assign, comment, triage,
open a case, share with a partner through the exit door)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from healthsec.model import IncidentStatus, Severity
from healthsec.services import alerts as alert_use
from healthsec.services import incidents as incident_use
from healthsec.services.common import Invalid
from healthsec.services.incident_view import incident_view
from healthsec.web.core import Changer, ConsoleRoute, Signed, attack, form_fields, one
from healthsec.web.svg import entity_graph

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
PAGE = 50
STATUS_CHOICES = ("open", "all", *(s.value for s in IncidentStatus))


def _filter(status: str, min_severity: int | None, q: str | None) -> incident_use.IncidentFilter:
    if status not in STATUS_CHOICES:
        raise Invalid(f"status must be one of {', '.join(STATUS_CHOICES)}, not {status!r}")
    return incident_use.IncidentFilter(
        status=IncidentStatus(status) if status not in ("open", "all") else None,
        open_only=status == "open",
        min_severity=None if min_severity is None else Severity(min_severity),
        text=(q or "").strip() or None,
    )


@router.get("/incidents", response_class=HTMLResponse)
def list_page(
    console: Signed,
    status: Annotated[str, Query(max_length=32)] = "open",
    min_severity: Annotated[int | None, Query(ge=0, le=4)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> HTMLResponse:
    page = incident_use.list_incidents(
        console.store, _filter(status, min_severity, q), limit=PAGE, offset=offset, with_total=True
    )
    ctx = {"status": status, "min_severity": min_severity, "q": q or "", "offset": offset}
    return console.render(
        "incidents.html",
        active="incidents",
        title="Incidents",
        page=page,
        f=ctx,
        statuses=STATUS_CHOICES,
        severities=list(Severity),
    )


@router.get("/live/incidents", response_class=HTMLResponse)
def live_rows(
    console: Signed,
    status: Annotated[str, Query(max_length=32)] = "open",
    min_severity: Annotated[int | None, Query(ge=0, le=4)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> HTMLResponse:
    """The list's rows again (htmx polls it, so new incidents appear without a reload)."""
    page = incident_use.list_incidents(
        console.store, _filter(status, min_severity, q), limit=PAGE, offset=offset, with_total=True
    )
    ctx = {"status": status, "min_severity": min_severity, "q": q or "", "offset": offset}
    return console.render("_incident_rows.html", page=page, f=ctx)


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(console: Signed, incident_id: str) -> HTMLResponse:
    from healthsec.services.share import list_partners

    view = incident_view(console.store, incident_id, attack())
    graph = entity_graph(view.nodes, view.links)
    partners = [p.partner for p in list_partners(console.store)] if console.viewer.can_change else []
    return console.render(
        "incident.html",
        active="incidents",
        title=view.detail.incident.title,
        v=view,
        i=view.detail.incident,
        graph=graph,
        statuses=[s.value for s in IncidentStatus],
        partners=partners,
    )


def _back(incident_id: str, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"/incidents/{incident_id}{anchor}", status_code=303)


@router.post("/incidents/{incident_id}/status")
async def change_status(console: Changer, incident_id: str) -> Response:
    fields = await form_fields(console.request)
    note = one(fields, "note").strip() or None
    incident_use.set_status(
        console.store, incident_id, one(fields, "status"), actor=console.viewer.actor, note=note
    )
    return _back(incident_id)


@router.post("/incidents/{incident_id}/assign")
async def assign(console: Changer, incident_id: str) -> Response:
    fields = await form_fields(console.request)
    incident_use.assign(console.store, incident_id, one(fields, "assignee"), actor=console.viewer.actor)
    return _back(incident_id)


@router.post("/incidents/{incident_id}/comment")
async def comment(console: Changer, incident_id: str) -> Response:
    fields = await form_fields(console.request)
    incident_use.comment(console.store, incident_id, one(fields, "text"), actor=console.viewer.actor)
    return _back(incident_id, "#timeline")


@router.post("/incidents/{incident_id}/triage")
async def triage(console: Changer, incident_id: str) -> Response:
    """Mark the checked alerts of this incident true or false positive (feedback for training)."""
    fields = await form_fields(console.request)
    ids = fields.get("alert_id", [])
    if not ids:
        raise Invalid("tick at least one alert to triage")
    incident_use.get_incident(console.store, incident_id)  # 404 for another organisation's incident
    alert_use.triage_alerts(
        console.store,
        ids,
        one(fields, "verdict"),
        actor=console.viewer.actor,
        comment=one(fields, "comment").strip() or None,
    )
    return _back(incident_id, "#alerts")


@router.post("/incidents/{incident_id}/case")
async def open_case(console: Changer, incident_id: str) -> Response:
    from healthsec.services.cases import CaseService, ResponseConfig

    fields = await form_fields(console.request)
    svc = CaseService(console.store, ResponseConfig.from_settings(console.settings, console.viewer.org))
    case_id, _ = svc.open([incident_id], console.viewer.actor, title=one(fields, "title").strip() or None)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.post("/incidents/{incident_id}/share")
async def share(console: Changer, incident_id: str) -> Response:
    """Download what the partner receives: the exit door's output (privacy transforms, TLP, partner rules)."""
    from healthsec.services.share import export_incidents

    fields = await form_fields(console.request)
    keys = _sharing_keys(console.settings)
    out: list[bytes] = []
    done = export_incidents(
        console.store,
        keys,
        sink=out.append,
        actor=console.viewer.actor,
        producer=console.viewer.org,
        incident_ids=[incident_id],
        tlp=one(fields, "tlp", "amber"),
        partner=one(fields, "partner").strip() or None,
        fmt=one(fields, "format", "stix"),
    )
    name = f"{incident_id}-{done.recipient}.{'json'}".replace("/", "_")
    return Response(
        b"".join(out),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _sharing_keys(settings: object) -> object:
    from healthsec.privacy.pseudonymise import SharingKeys

    path = getattr(settings, "sharing_secret_file", None)
    if path is None:
        from healthsec.services.common import Refused

        raise Refused("sharing is not configured on this server (sharing_secret_file is unset)")
    return SharingKeys.from_secret(path.read_bytes().strip())
