"""Cases pages: the list, and a case with tasks, observables, comments, timeline, breach clocks, drafts and
containment requests waiting for approval. Every change goes through services.cases / breach / playbooks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from healthsec.model import Severity
from healthsec.services.cases import OBSERVABLE_KINDS, STATUSES, CaseService, ResponseConfig
from healthsec.services.common import Invalid, NotFound, Refused
from healthsec.web.core import Changer, Console, ConsoleRoute, Forbidden, Signed, form_fields

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
T = TypeVar("T")
REGIMES = ("gdpr", "nis2", "hipaa")
TASK_STATES = ("open", "done", "cancelled")
MAX_TEXT = 20_000


def case_service(console: Console) -> CaseService:
    return CaseService(console.store, ResponseConfig.from_settings(console.settings, console.viewer.org))


def call(fn: Callable[[], T]) -> T:
    """The case use cases refuse with ValueError: "no ..." is an unknown id (404), the rest a refusal."""
    try:
        return fn()
    except (NotFound, Invalid, Refused):
        raise
    except ValueError as exc:
        msg = str(exc)
        if msg.startswith("no "):
            raise NotFound("record", msg, message=msg) from None
        raise Refused(msg) from None


def one(fields: dict[str, list[str]], name: str, *, required: bool = False, limit: int = 2000) -> str:
    """One form field, trimmed; Invalid names the field when it is missing or too long."""
    value = (fields.get(name) or [""])[0].strip()
    if required and not value:
        raise Invalid(f"the field {name!r} is required")
    if len(value) > limit:
        raise Invalid(f"the field {name!r} holds more than {limit} characters")
    return value


def parse_when(text: str, name: str) -> datetime | None:
    """A time from the form: ISO 8601 with an offset, or a browser's local-time value read as UTC."""
    if not text:
        return None
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{name}: {text!r} is not a date and time (e.g. 2026-03-03T14:00)") from None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def clock_summary(clocks: list[dict[str, Any]]) -> dict[str, int]:
    out = {"late": 0, "due": 0, "met": 0, "open": 0}
    for c in clocks:
        out[c["state"]] = out.get(c["state"], 0) + 1
    return out


def case_view(shown: dict[str, Any]) -> dict[str, Any]:
    """The case page's groups: pending approvals first, decided requests after; tasks open before done."""
    containment = shown["containment"]
    waiting = [c for c in containment if c.get("status") == "awaiting_approval"]
    decided = [c for c in containment if c.get("status") != "awaiting_approval"]
    tasks = sorted(shown["tasks"], key=lambda t: (t.get("status") != "open", t.get("due") or "", t["id"]))
    return {
        "waiting": waiting,
        "decided": decided,
        "tasks": tasks,
        "clock_counts": clock_summary(shown["clocks"]),
        "regimes": sorted({c["regime"] for c in shown["clocks"]}),
    }


@router.get("/cases", response_class=HTMLResponse)
def cases_page(console: Signed, status: Annotated[str, Query(max_length=32)] = "") -> HTMLResponse:
    from healthsec.services.breach import clock_rows

    if status and status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    svc = case_service(console)
    items = svc.list(status=status or None, limit=500)
    clocks: dict[str, list[dict[str, Any]]] = {}
    for c in clock_rows(svc):
        clocks.setdefault(c["case"], []).append(c)
    waiting = svc.awaiting_approval()
    rows = [
        {**c, "clocks": clock_summary(clocks.get(c["id"], [])), "waiting": waiting.get(c["id"], 0)}
        for c in items
    ]
    return console.render(
        "cases.html", active="cases", title="Cases", rows=rows, status=status, statuses=STATUSES
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(console: Signed, case_id: str) -> HTMLResponse:
    svc = case_service(console)
    shown = call(lambda: svc.show(case_id))
    return console.render(
        "case.html",
        active="cases",
        title=shown["title"],
        case=shown,
        statuses=[s for s in STATUSES if s != "closed"],
        severities=[s.label for s in Severity],
        observable_kinds=OBSERVABLE_KINDS,
        task_states=TASK_STATES,
        all_regimes=REGIMES,
        live=sorted(svc.config.live.adapters),  # adapters that run an approved plan (else dry-run)
        **case_view(shown),
    )


async def _posted(console: Console, request: Request) -> tuple[dict[str, list[str]], CaseService]:
    """The posted form and the case use cases of the viewer's organisation."""
    return await form_fields(request), case_service(console)


def _back(case_id: str, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"/cases/{case_id}{'#' + anchor if anchor else ''}", status_code=303)


@router.post("/cases/{case_id}/tasks")
async def add_task(console: Changer, request: Request, case_id: str) -> Response:
    f, svc = await _posted(console, request)
    title, owner = one(f, "title", required=True, limit=500), one(f, "owner", limit=128)
    due = parse_when(one(f, "due", limit=64), "due")
    call(lambda: svc.add_task(case_id, title, console.viewer.actor, owner=owner or None, due=due))
    return _back(case_id, "tasks")


@router.post("/cases/{case_id}/tasks/{task_id}/status")
async def task_status(console: Changer, request: Request, case_id: str, task_id: str) -> Response:
    f, svc = await _posted(console, request)
    call(lambda: svc.entry_of(case_id, task_id, "task"))
    status = one(f, "status", required=True, limit=32)
    call(lambda: svc.set_task(task_id, status, console.viewer.actor))
    return _back(case_id, "tasks")


@router.post("/cases/{case_id}/observables")
async def add_observable(console: Changer, request: Request, case_id: str) -> Response:
    f, svc = await _posted(console, request)
    kind, value = one(f, "kind", required=True, limit=32), one(f, "value", required=True, limit=512)
    call(lambda: svc.add_observable(case_id, kind, value, console.viewer.actor))
    return _back(case_id, "observables")


@router.post("/cases/{case_id}/comments")
async def add_comment(console: Changer, request: Request, case_id: str) -> Response:
    f, svc = await _posted(console, request)
    text = one(f, "text", required=True, limit=MAX_TEXT)
    call(lambda: svc.comment(case_id, text, console.viewer.actor))
    return _back(case_id, "comments")


@router.post("/cases/{case_id}/status")
async def set_status(console: Changer, request: Request, case_id: str) -> Response:
    f, svc = await _posted(console, request)
    status = one(f, "status", required=True, limit=32)
    call(lambda: svc.set_status(case_id, status, console.viewer.actor))
    return _back(case_id)


@router.post("/cases/{case_id}/severity")
async def set_severity(console: Changer, request: Request, case_id: str) -> Response:
    f, svc = await _posted(console, request)
    label = one(f, "severity", required=True, limit=16)
    try:
        severity = Severity.parse(label)
    except KeyError:
        raise Invalid(
            f"severity must be one of {', '.join(s.label for s in Severity)}, not {label!r}"
        ) from None
    call(lambda: svc.set_severity(case_id, severity, console.viewer.actor))
    return _back(case_id)


@router.post("/cases/{case_id}/close")
async def close_case(console: Changer, request: Request, case_id: str) -> Response:
    f, svc = await _posted(console, request)
    resolution, lessons = one(f, "resolution", limit=MAX_TEXT), one(f, "lessons", limit=MAX_TEXT)
    call(lambda: svc.close(case_id, resolution, lessons, console.viewer.actor))
    return _back(case_id)


@router.post("/cases/{case_id}/aware")
async def start_clocks(console: Changer, request: Request, case_id: str) -> Response:
    from healthsec.services.breach import start_clocks as use_case

    f, svc = await _posted(console, request)
    at = parse_when(one(f, "at", limit=64), "aware at")
    call(lambda: use_case(svc, case_id, console.viewer.actor, at))
    return _back(case_id, "clocks")


@router.post("/cases/{case_id}/clocks/{obligation}/met")
async def clock_met(console: Changer, request: Request, case_id: str, obligation: str) -> Response:
    from healthsec.services.breach import mark_met

    f, svc = await _posted(console, request)
    at = parse_when(one(f, "at", limit=64), "met at")
    call(lambda: mark_met(svc, case_id, obligation, console.viewer.actor, at))
    return _back(case_id, "clocks")


@router.post("/cases/{case_id}/containment/{request_id}/{decision}")
async def decide(
    console: Changer, request: Request, case_id: str, request_id: str, decision: str
) -> Response:
    """A person approves or rejects a containment request (patient-connected: always a person); a live
    adapter runs the approved plan, and approving one that did not run yet runs it again."""
    from healthsec.services.containment import decide as use_case
    from healthsec.services.containment import rollback

    f, svc = await _posted(console, request)
    call(lambda: svc.entry_of(case_id, request_id, "containment"))
    reason = one(f, "reason", limit=2000)
    if decision == "approve":
        call(lambda: use_case(svc, request_id, console.viewer.actor, approve=True, reason=reason))
    elif decision == "reject":
        call(lambda: use_case(svc, request_id, console.viewer.actor, approve=False, reason=reason))
    elif decision == "rollback":
        call(lambda: rollback(svc, request_id, console.viewer.actor, reason))
    else:
        raise NotFound("decision", decision)
    return _back(case_id, "containment")


@router.get("/cases/{case_id}/drafts/{name}")
def draft(console: Signed, case_id: str, name: str) -> Response:
    """A notification draft (``gdpr.md``, ``nis2.pdf``, ...) for a person to complete; never sent."""
    from healthsec.respond.drafts import render_pdf
    from healthsec.services.breach import draft as use_case

    if not console.viewer.can_change:  # as in the API: drafts are for the people who notify
        raise Forbidden(f"a {console.viewer.role.value} token may not download notification drafts")
    regime, _, fmt = name.partition(".")
    if regime not in REGIMES or fmt not in ("md", "pdf"):
        raise NotFound("draft", name)
    svc = case_service(console)
    text = call(lambda: use_case(svc, case_id, regime))
    disposition = {"Content-Disposition": f'attachment; filename="{case_id}-{regime}.{fmt}"'}
    if fmt == "pdf":
        return Response(render_pdf(text), media_type="application/pdf", headers=disposition)
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8", headers=disposition)
