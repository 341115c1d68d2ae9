"""REST v1 routes for cases, containment approvals, breach clocks and drafts, playbooks and reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import AwareDatetime, Field

from healthsec.api.auth import ERROR_RESPONSES, Principal, Reader, Triager, org_store
from healthsec.api.security import Body, Timestamp

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    404: {"description": "Unknown case, incident, task or request in the caller's organisation"},
    409: {"description": "Refused in this state (e.g. closing without a lessons-learnt note)"},
}
router = APIRouter(prefix="/api/v1", responses=_RESPONSES, tags=["cases"])
T = TypeVar("T")


def _svc(request: Request, principal: Principal) -> Any:
    from healthsec.services.cases import CaseService, ResponseConfig

    store = org_store(request, principal)
    settings = request.app.state.services.settings
    return CaseService(store, ResponseConfig.from_settings(settings, principal.org))


def _call(fn: Callable[[], T]) -> T:
    """Service refusals become 404 (unknown id) or 409 (not allowed in this state), with the reason."""
    try:
        return fn()
    except ValueError as exc:  # CaseError is a ValueError
        msg = str(exc)
        raise HTTPException(404 if msg.startswith("no ") else 409, detail=msg) from None


class _In(Body):
    """Request bodies of the case routes (unknown fields and control characters refused)."""


class CaseIn(_In):
    incidents: list[str] = Field(min_length=1, max_length=100)
    title: str | None = Field(default=None, max_length=500)
    data_categories: list[str] = Field(default_factory=list, max_length=20)
    significant: bool = False


class IncidentsIn(_In):
    incidents: list[str] = Field(min_length=1, max_length=100)


class TaskIn(_In):
    title: str = Field(min_length=1, max_length=500)
    owner: str | None = Field(default=None, max_length=128)
    due: AwareDatetime | None = None


class TaskStatusIn(_In):
    status: Literal["open", "done", "cancelled"]


class ObservableIn(_In):
    kind: str = Field(min_length=1, max_length=32)
    value: str = Field(min_length=1, max_length=512)


class CommentIn(_In):
    text: str = Field(min_length=1, max_length=20_000)


class AttachmentIn(_In):
    name: str = Field(min_length=1, max_length=256)
    ref: str = Field(min_length=1, max_length=2048, description="URL or evidence-store path (not the file)")


class StatusIn(_In):
    status: Literal["open", "investigating", "contained"]


class CloseIn(_In):
    resolution: str = Field(max_length=20_000)
    lessons: str = Field(max_length=20_000, description="lessons learnt")


class WhenIn(_In):
    at: AwareDatetime | None = None


class DecisionIn(_In):
    reason: str = Field(default="", max_length=2000)


class RunIn(_In):
    incidents: list[str] | None = Field(default=None, max_length=1000)


@router.get("/cases")
def list_cases(
    request: Request, principal: Reader, status: Annotated[str | None, Query(max_length=32)] = None
) -> dict[str, Any]:
    """Cases of the caller's organisation, newest first."""
    return {"items": _svc(request, principal).list(status=status, limit=1000)}


@router.post("/cases", status_code=201)
def open_case(request: Request, principal: Triager, body: CaseIn) -> dict[str, Any]:
    """Open a case from one or more incidents."""
    svc = _svc(request, principal)
    cid, _ = _call(
        lambda: svc.open(
            body.incidents,
            principal.actor,
            title=body.title,
            data_categories=body.data_categories,
            significant=body.significant,
        )
    )
    return dict(svc.show(cid))


@router.get("/cases/{case_id}")
def get_case(request: Request, principal: Reader, case_id: str) -> dict[str, Any]:
    """A case with tasks, observables, comments, attachments, containment, runs, clocks and timeline."""
    svc = _svc(request, principal)
    return dict(_call(lambda: svc.show(case_id)))


@router.post("/cases/{case_id}/incidents")
def add_incidents(request: Request, principal: Triager, case_id: str, body: IncidentsIn) -> dict[str, Any]:
    svc = _svc(request, principal)
    _call(lambda: svc.add_incidents(case_id, body.incidents, principal.actor))
    return dict(svc.show(case_id))


@router.post("/cases/{case_id}/tasks", status_code=201)
def add_task(request: Request, principal: Triager, case_id: str, body: TaskIn) -> dict[str, str]:
    svc = _svc(request, principal)
    return {
        "id": _call(
            lambda: svc.add_task(case_id, body.title, principal.actor, owner=body.owner, due=body.due)
        )
    }


@router.post("/tasks/{task_id}/status")
def task_status(request: Request, principal: Triager, task_id: str, body: TaskStatusIn) -> dict[str, str]:
    svc = _svc(request, principal)
    _call(lambda: svc.set_task(task_id, body.status, principal.actor))
    return {"id": task_id, "status": body.status}


@router.post("/cases/{case_id}/observables", status_code=201)
def add_observable(request: Request, principal: Triager, case_id: str, body: ObservableIn) -> dict[str, str]:
    svc = _svc(request, principal)
    return {"id": _call(lambda: svc.add_observable(case_id, body.kind, body.value, principal.actor))}


@router.post("/cases/{case_id}/comments", status_code=201)
def add_comment(request: Request, principal: Triager, case_id: str, body: CommentIn) -> dict[str, str]:
    svc = _svc(request, principal)
    return {"id": _call(lambda: svc.comment(case_id, body.text, principal.actor))}


@router.post("/cases/{case_id}/attachments", status_code=201)
def add_attachment(request: Request, principal: Triager, case_id: str, body: AttachmentIn) -> dict[str, str]:
    svc = _svc(request, principal)
    return {"id": _call(lambda: svc.attach(case_id, body.name, body.ref, principal.actor))}


@router.post("/cases/{case_id}/status")
def set_status(request: Request, principal: Triager, case_id: str, body: StatusIn) -> dict[str, Any]:
    svc = _svc(request, principal)
    _call(lambda: svc.set_status(case_id, body.status, principal.actor))
    return dict(svc.show(case_id))


@router.post("/cases/{case_id}/close")
def close_case(request: Request, principal: Triager, case_id: str, body: CloseIn) -> dict[str, Any]:
    """Close a case; a resolution and a lessons-learnt note are required (409 without)."""
    svc = _svc(request, principal)
    _call(lambda: svc.close(case_id, body.resolution, body.lessons, principal.actor))
    return dict(svc.show(case_id))


@router.post("/cases/{case_id}/aware")
def aware(request: Request, principal: Triager, case_id: str, body: WhenIn) -> dict[str, Any]:
    """Record awareness of a breach and start the clocks the case calls for."""
    from healthsec.services.breach import clock_rows, start_clocks

    svc = _svc(request, principal)
    started = _call(lambda: start_clocks(svc, case_id, principal.actor, body.at))
    return {"started": started, "clocks": clock_rows(svc, case_id)}


@router.get("/clocks")
def clocks(
    request: Request, principal: Reader, case: Annotated[str | None, Query()] = None
) -> dict[str, Any]:
    """Breach-notification clocks: deadline (UTC) and state (due, met, late, open)."""
    from healthsec.services.breach import clock_rows

    return {"items": clock_rows(_svc(request, principal), case)}


@router.post("/cases/{case_id}/clocks/{obligation}/met")
def clock_met(
    request: Request, principal: Triager, case_id: str, obligation: str, body: WhenIn
) -> dict[str, str]:
    from healthsec.services.breach import mark_met

    svc = _svc(request, principal)
    return {"state": _call(lambda: mark_met(svc, case_id, obligation, principal.actor, body.at))}


@router.get(
    "/cases/{case_id}/drafts/{regime}",
    response_model=None,
    responses={200: {"content": {"text/markdown": {}, "application/pdf": {}}, "description": "The draft"}},
)
def breach_draft(
    request: Request,
    principal: Triager,
    case_id: str,
    regime: Literal["gdpr", "nis2", "hipaa"],
    fmt: Annotated[Literal["md", "pdf"], Query(alias="format")] = "md",
) -> Response:
    """A notification draft pre-filled from the case, for a person to complete (never sent)."""
    from healthsec.respond.drafts import render_pdf
    from healthsec.services.breach import draft

    svc = _svc(request, principal)
    text = _call(lambda: draft(svc, case_id, regime))
    if fmt == "pdf":
        return Response(render_pdf(text), media_type="application/pdf")
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")


@router.post("/containment/{request_id}/approve")
def approve(request: Request, principal: Triager, request_id: str) -> dict[str, Any]:
    """A person approves a containment request (dry-run: the plan is recorded; a live adapter runs it)."""
    from healthsec.services.containment import decide

    svc = _svc(request, principal)
    return dict(_call(lambda: decide(svc, request_id, principal.actor, approve=True)))


@router.post("/containment/{request_id}/reject")
def reject(request: Request, principal: Triager, request_id: str, body: DecisionIn) -> dict[str, Any]:
    from healthsec.services.containment import decide

    svc = _svc(request, principal)
    return dict(_call(lambda: decide(svc, request_id, principal.actor, approve=False, reason=body.reason)))


@router.post("/containment/{request_id}/rollback")
def rollback(request: Request, principal: Triager, request_id: str, body: DecisionIn) -> dict[str, Any]:
    """Undo an approved containment (records who and why; a live adapter undoes what it did)."""
    from healthsec.services.containment import rollback as undo

    svc = _svc(request, principal)
    return dict(_call(lambda: undo(svc, request_id, principal.actor, body.reason)))


@router.post("/playbooks/run")
def run_playbooks(request: Request, principal: Triager, body: RunIn) -> dict[str, Any]:
    """Run the matching playbooks over incidents (all when none named); done runs are not repeated."""
    from healthsec.respond.playbook import PlaybookError, load_all
    from healthsec.services.playbooks import PlaybookEngine

    svc = _svc(request, principal)
    try:
        books = load_all(request.app.state.services.settings.playbook_dirs)
    except PlaybookError as exc:
        raise HTTPException(409, detail=f"playbook refused: {exc}") from None
    store = svc.store
    if body.incidents:
        found = [store.incidents.get(i) for i in body.incidents]
        if any(f is None for f in found):
            raise HTTPException(404, detail="unknown incident id")
        incidents = [f for f in found if f is not None]
    else:
        incidents = store.incidents.list(limit=max(store.incidents.count(), 1))
    from healthsec.respond.containment import ContainmentConfig

    settings = request.app.state.services.settings
    runs = PlaybookEngine(svc, books, containment=ContainmentConfig.from_settings(settings)).on_incidents(
        incidents
    )
    keys = ("id", "playbook", "subject", "status", "case_id", "error")
    return {"runs": [{k: r[k] for k in keys} for r in runs]}


# the forms respond.clocks.regime_of reads, as patterns the document publishes and the route enforces
Jurisdiction = Annotated[str, Field(pattern=r"^([Ee][Uu](:[A-Za-z]{2})?|[Uu][Ss])$")]
Residents = Annotated[str, Field(pattern=r"^[A-Za-z]{2}=[0-9]{1,9}$")]


@router.get(
    "/deadlines",
    responses={409: {"description": "The stated facts contradict each other (residents over individuals)"}},
)
def deadlines(
    principal: Reader,
    aware_at: Annotated[Timestamp, Query(description="ISO 8601 with offset")],
    jurisdiction: Annotated[list[Jurisdiction], Query(min_length=1, max_length=30)],
    individuals: Annotated[int | None, Query(ge=0, le=10**10)] = None,
    residents: Annotated[list[Residents] | None, Query(max_length=60, description="STATE=COUNT")] = None,
    notified_at: Annotated[Timestamp | None, Query()] = None,
    ongoing: bool = False,
) -> list[dict[str, str | None]]:
    """What-if clocks for stated facts (nothing stored): regime, obligation, due (UTC), basis."""
    from healthsec.respond.clocks import BreachFacts, obligations

    del principal
    counts: dict[str, int] = {}
    for r in residents or []:  # the pattern held: "XX=<digits>"
        state, _, n = r.partition("=")
        counts[state.upper()] = counts.get(state.upper(), 0) + int(n)
    if individuals is not None and sum(counts.values()) > individuals:
        raise HTTPException(409, detail="the residents listed exceed the individuals affected")
    try:
        facts = BreachFacts(
            aware_at=aware_at,
            jurisdictions=jurisdiction,
            individuals=individuals,
            residents=counts,
            notified_at=notified_at,
            ongoing=ongoing,
        )
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    return [o.as_dict() for o in obligations(facts)]


@router.get("/reports/awareness", response_class=HTMLResponse, tags=["reports"])
def awareness(
    request: Request,
    principal: Reader,
    since: Annotated[Timestamp | None, Query()] = None,
    until: Annotated[Timestamp | None, Query()] = None,
) -> HTMLResponse:
    """The risk-awareness report of the caller's organisation for a period (self-contained HTML)."""
    from healthsec.respond.awareness import render_html
    from healthsec.services.awareness import gather

    svc = _svc(request, principal)
    return HTMLResponse(render_html(_call(lambda: gather(svc, since, until))))
