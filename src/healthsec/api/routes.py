"""REST v1 routes over the store: alerts, incidents, assets, audit, tokens; all scoped to the caller's org."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field, field_validator

from healthsec.api.auth import (
    ERROR_RESPONSES,
    Admin,
    Principal,
    Reader,
    Triager,
    current_principal,
    org_store,
    require,
)
from healthsec.api.errors import NOT_FOUND, REFUSED, answering
from healthsec.api.security import Body, Timestamp
from healthsec.model import IncidentStatus, Severity
from healthsec.model.codec import to_dict
from healthsec.model.triage import Verdict
from healthsec.services import alerts as alert_use
from healthsec.services import assets as asset_use
from healthsec.services import incidents as incident_use
from healthsec.services.common import Page as ServicePage
from healthsec.services.common import attack_kb
from healthsec.store.auth import AuthError, AuthStore, Role

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="items to skip")]
AuditReader = Annotated[Principal, Depends(require(Role.ADMIN, Role.AUDITOR))]
Id = Annotated[str, Path(min_length=1, max_length=128)]


class Page(BaseModel):
    """One page of a list; ``next_offset`` is None on the last page; ``total`` only when asked for."""

    items: list[dict[str, Any]]
    limit: int
    offset: int
    next_offset: int | None
    total: int | None = None
    next_after: str | None = Field(
        default=None, description="keyset lists: pass as after= for the next page (None on the last)"
    )


class StatusUpdate(Body):
    status: IncidentStatus
    note: str | None = Field(default=None, max_length=2000)


class TriageIn(Body):
    verdict: Verdict
    comment: str | None = Field(default=None, max_length=alert_use.MAX_COMMENT)


class BulkTriageIn(TriageIn):
    alert_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        min_length=1, max_length=alert_use.MAX_BULK
    )


class AssignIn(Body):
    assignee: str | None = Field(max_length=128, description="the analyst; null takes the incident back")


class CommentIn(Body):
    text: str = Field(min_length=1, max_length=incident_use.MAX_TEXT)


class MergeIn(Body):
    incident_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        min_length=2, max_length=100, json_schema_extra={"uniqueItems": True}
    )

    @field_validator("incident_ids")
    @classmethod
    def _distinct(cls, ids: list[str]) -> list[str]:
        if len(set(ids)) != len(ids):
            raise ValueError("each incident id once")
        return ids


class SplitIn(Body):
    alert_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        min_length=1, max_length=10_000
    )


_CRITICALITY = Literal[
    "administrative",
    "business",
    "clinical_support",
    "patient_monitoring",
    "life_sustaining",
    "ADMINISTRATIVE",
    "BUSINESS",
    "CLINICAL_SUPPORT",
    "PATIENT_MONITORING",
    "LIFE_SUSTAINING",
]
_Text = Annotated[str | None, Field(default=None, max_length=256)]


class AssetIn(Body):
    """One inventory entry as the codec writes it; criticality by name or as 1 (administrative) to 5
    (life sustaining). Limits are the store's columns."""

    single_line = frozenset({"id", "name", "role", "zone", "ip", "mac", "cpe", "purl"})
    id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=256)
    role: str = Field(min_length=1, max_length=128)
    zone: str = Field(min_length=1, max_length=64)
    ip: str | None = Field(default=None, max_length=64)
    mac: _Text = None
    owner: _Text = None
    criticality: _CRITICALITY | Annotated[int, Field(ge=1, le=5)] = "business"
    device_type: _Text = None
    vendor: _Text = None
    product: _Text = None
    version: _Text = None
    cpe: _Text = None
    purl: _Text = None
    schema_version: int = Field(default=1, ge=1, le=1000)


class AssetsIn(Body):
    assets: list[AssetIn] = Field(max_length=asset_use.MAX_ASSETS)


class TokenIn(Body):
    single_line = frozenset({"name"})
    name: str = Field(min_length=1, max_length=128)
    role: Role
    ttl_days: int | None = Field(
        default=None, ge=1, le=3650, description="default: the server's token_ttl_days"
    )


class Count(BaseModel):
    count: int


def _page(page: ServicePage[Any], items: list[dict[str, Any]]) -> Page:
    return Page(
        items=items, limit=page.limit, offset=page.offset, next_offset=page.next_offset, total=page.total
    )


def _iso(value: Any) -> Any:
    """SQLite hands back naive datetimes for UTC columns: label them UTC."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return value


def _not_found(what: str, ident: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no {what} {ident!r} in your organisation")


@router.get("/whoami", tags=["auth"])
def whoami(principal: Annotated[Principal, Depends(current_principal)]) -> dict[str, str]:
    """The caller's organisation and role (any active token)."""
    return {"org": principal.org, "role": principal.role.value, "token_id": principal.token_id}


# -- alerts -----------------------------------------------------------------------------------------
@router.get("/alerts", tags=["alerts"], response_model=Page, responses=NOT_FOUND)
def list_alerts(
    request: Request,
    principal: Reader,
    limit: Limit = 100,
    offset: Offset = 0,
    min_severity: Annotated[int | None, Query(ge=0, le=4)] = None,
    detector: Annotated[str | None, Query(max_length=128)] = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    incident_id: Annotated[str | None, Query(max_length=128)] = None,
    asset: Annotated[str | None, Query(max_length=256, description="asset id, name or IP")] = None,
    technique: Annotated[str | None, Query(max_length=32, description="ATT&CK id; T1059 takes subs")] = None,
    verdict: Annotated[
        str | None, Query(pattern="^(true_positive|false_positive|untriaged)$", description="triage state")
    ] = None,
    total: Annotated[bool, Query(description="also count every match (one more query)")] = False,
    after: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=128,
            description="the previous page's next_after: the page starts after that alert (404 if none)",
        ),
    ] = None,
) -> Response:
    """Alerts of the caller's organisation, oldest first, filtered and paged.

    Page with ``after`` (the previous page's ``next_after``), which stays fast however deep the list is;
    ``offset`` reads and drops every alert before the page. ``since`` is inclusive and ``until``
    exclusive: ``until`` at or before ``since`` is an empty window (an empty page).
    """
    flt = alert_use.AlertFilter(
        detector=detector,
        min_severity=None if min_severity is None else Severity(min_severity),
        asset=asset,
        technique=technique,
        since=since,
        until=until,
        incident_id=incident_id,
        verdict=verdict,
    )
    store = org_store(request, principal)
    with answering():
        if total:
            page = alert_use.list_alert_bodies(
                store, flt, limit=limit, offset=offset, with_total=True, after=after
            )
            raw = [orjson.dumps(b).decode() for b in page.items]
        else:  # the hot read under load: the stored JSON text is spliced in, never parsed nor rebuilt
            raw, page = alert_use.alert_page_json(store, flt, limit=limit, offset=offset, after=after)
    rest = {
        "limit": page.limit,
        "offset": page.offset,
        "next_offset": page.next_offset,
        "total": page.total,
        "next_after": page.next_after,
    }
    body = b'{"items":[' + ",".join(raw).encode() + b"]," + orjson.dumps(rest)[1:]
    return Response(body, media_type="application/json")


@router.get("/alerts/{alert_id}", tags=["alerts"], responses=NOT_FOUND)
def get_alert(request: Request, principal: Reader, alert_id: Id) -> dict[str, Any]:
    """One alert with its incident and the analysts' verdicts (latest in ``verdict``)."""
    with answering():
        d = alert_use.get_alert(org_store(request, principal), alert_id)
    history = jsonable_encoder(d.history)
    return to_dict(d.alert) | {
        "incident_id": d.incident_id,
        "verdict": history[-1] if history else None,
        "history": history,
    }


@router.post("/alerts/{alert_id}/triage", tags=["alerts"], responses=NOT_FOUND)
def triage_alert(request: Request, principal: Triager, alert_id: Id, body: TriageIn) -> dict[str, Any]:
    """Mark an alert true or false positive (kept as feedback for training, and audited)."""
    with answering():
        done = alert_use.triage_alert(
            org_store(request, principal), alert_id, body.verdict, actor=principal.actor, comment=body.comment
        )
    return dict(jsonable_encoder(done))


@router.post("/alerts/triage", tags=["alerts"], responses=NOT_FOUND)
def triage_alerts(request: Request, principal: Triager, body: BulkTriageIn) -> dict[str, Any]:
    """Mark many alerts at once; all or none (an unknown id stores nothing and is named)."""
    with answering():
        done = alert_use.triage_alerts(
            org_store(request, principal),
            body.alert_ids,
            body.verdict,
            actor=principal.actor,
            comment=body.comment,
        )
    return {"count": len(done), "verdict": body.verdict.value}


# -- incidents --------------------------------------------------------------------------------------
@router.get("/incidents", tags=["incidents"], response_model=Page)
def list_incidents(
    request: Request,
    principal: Reader,
    limit: Limit = 100,
    offset: Offset = 0,
    status_: Annotated[IncidentStatus | None, Query(alias="status")] = None,
    min_severity: Annotated[int | None, Query(ge=0, le=4)] = None,
    assignee: Annotated[str | None, Query(max_length=128, description="'-' for unassigned")] = None,
    order: Annotated[incident_use.Order, Query(description="severity, or risk to patients")] = "severity",
    total: Annotated[bool, Query(description="also count every match")] = False,
) -> Page:
    flt = incident_use.IncidentFilter(
        status=status_,
        min_severity=None if min_severity is None else Severity(min_severity),
        assignee=assignee,
    )
    with answering():
        page = incident_use.list_incidents(
            org_store(request, principal), flt, limit=limit, offset=offset, order=order, with_total=total
        )
    items = [
        to_dict(r.incident) | {"assignee": r.assignee, "risk": jsonable_encoder(r.risk)} for r in page.items
    ]
    return _page(page, items)


@router.get("/incidents/{incident_id}", tags=["incidents"], responses=NOT_FOUND)
def get_incident(request: Request, principal: Reader, incident_id: Id) -> dict[str, Any]:
    """One incident with its alerts (time order), risk, ATT&CK context, assignee and activity."""
    with answering():
        d = incident_use.incident_detail(org_store(request, principal), incident_id, attack_kb()[0])
    return to_dict(d.incident) | {
        "alerts": [to_dict(a) for a in d.alerts],
        "risk": jsonable_encoder(d.risk),
        "technique_names": jsonable_encoder(d.techniques),
        "mitigations": [{"id": m, "name": n, "covers": c} for m, n, c in d.mitigations],
        "healthcare_groups": [{"name": g, "techniques": n} for g, n in d.healthcare_groups],
        "assignee": d.assignee,
        "activity": jsonable_encoder(d.activity),
    }


@router.patch("/incidents/{incident_id}", tags=["incidents"], responses=NOT_FOUND)
def update_incident(
    request: Request, principal: Triager, incident_id: Id, body: StatusUpdate
) -> dict[str, Any]:
    with answering():
        inc = incident_use.set_status(
            org_store(request, principal), incident_id, body.status, actor=principal.actor, note=body.note
        )
    return to_dict(inc)


@router.post("/incidents/{incident_id}/assign", tags=["incidents"], responses=NOT_FOUND)
def assign_incident(request: Request, principal: Triager, incident_id: Id, body: AssignIn) -> dict[str, Any]:
    """Give the incident to an analyst (null: nobody)."""
    with answering():
        entry = incident_use.assign(
            org_store(request, principal), incident_id, body.assignee, actor=principal.actor
        )
    return dict(jsonable_encoder(entry))


@router.post("/incidents/{incident_id}/comments", tags=["incidents"], status_code=201, responses=NOT_FOUND)
def comment_incident(
    request: Request, principal: Triager, incident_id: Id, body: CommentIn
) -> dict[str, Any]:
    """Add a comment to the incident's history."""
    with answering():
        entry = incident_use.comment(
            org_store(request, principal), incident_id, body.text, actor=principal.actor
        )
    return dict(jsonable_encoder(entry))


@router.post("/incidents/merge", tags=["incidents"], responses={**NOT_FOUND, **REFUSED})
def merge_incidents(request: Request, principal: Triager, body: MergeIn) -> dict[str, Any]:
    """Merge incidents that are one story; the merged incident keeps every alert."""
    with answering():
        merged = incident_use.merge(org_store(request, principal), body.incident_ids, actor=principal.actor)
    return to_dict(merged)


@router.post("/incidents/{incident_id}/split", tags=["incidents"], responses={**NOT_FOUND, **REFUSED})
def split_incident(request: Request, principal: Triager, incident_id: Id, body: SplitIn) -> dict[str, Any]:
    """Move the named alerts into a new incident; both keep all their alerts."""
    with answering():
        kept, moved = incident_use.split(
            org_store(request, principal), incident_id, body.alert_ids, actor=principal.actor
        )
    return {"kept": to_dict(kept), "new": to_dict(moved)}


# -- assets -----------------------------------------------------------------------------------------
@router.get("/assets", tags=["assets"], response_model=Page)
def list_assets(
    request: Request,
    principal: Reader,
    limit: Limit = 100,
    offset: Offset = 0,
    total: Annotated[bool, Query(description="also count every asset")] = False,
) -> Page:
    """The inventory, most critical first."""
    page = asset_use.list_assets(org_store(request, principal), limit=limit, offset=offset, with_total=total)
    return _page(page, [to_dict(a) for a in page.items])


@router.get("/assets/{asset}", tags=["assets"], responses=NOT_FOUND)
def get_asset(
    request: Request, principal: Reader, asset: Annotated[str, Path(min_length=1, max_length=256)]
) -> dict[str, Any]:
    """One asset (id, name or IP): inventory, exposure profile, vulnerabilities, risk with its factors."""
    with answering():
        d = asset_use.asset_detail(org_store(request, principal), asset)
    return {
        "asset": to_dict(d.asset),
        "profile": jsonable_encoder(d.profile),
        "vulnerabilities": jsonable_encoder(d.vulnerabilities),
        "risk": jsonable_encoder(d.risk) | {"explanation": d.risk.explain()},
    }


@router.put("/assets", tags=["assets"], response_model=Count)
def upsert_assets(request: Request, principal: Triager, body: AssetsIn) -> Count:
    with answering():
        raw = [a.model_dump(exclude_none=True) for a in body.assets]
        parsed = asset_use.upsert_assets(org_store(request, principal), raw, actor=principal.actor)
    return Count(count=len(parsed))


# -- audit ------------------------------------------------------------------------------------------
@router.get("/audit", tags=["audit"], response_model=Page)
def list_audit(request: Request, principal: AuditReader, limit: Limit = 100) -> Page:
    rows = org_store(request, principal).audit.list(limit=limit)
    items = [{**r, "ts": _iso(r["ts"])} for r in rows]
    return Page(items=items, limit=limit, offset=0, next_offset=limit if len(items) == limit else None)


# -- tokens (admin of the organisation) -------------------------------------------------------------
@router.get("/tokens", tags=["auth"], response_model=Page)
def list_tokens(request: Request, principal: Admin) -> Page:
    auth: AuthStore = request.app.state.services.auth
    items = [t.as_dict() for t in auth.list_tokens(principal.org)]
    return Page(items=items, limit=len(items), offset=0, next_offset=None)


@router.post("/tokens", tags=["auth"], status_code=201)
def create_token(request: Request, principal: Admin, body: TokenIn) -> dict[str, Any]:
    """Create a token in the caller's organisation; the secret is in the answer and never again."""
    services = request.app.state.services
    ttl = timedelta(days=body.ttl_days or services.settings.token_ttl_days)
    try:
        info, secret = services.auth.create_token(
            principal.org, body.role, body.name, ttl=ttl, actor=principal.actor
        )
    except AuthError as exc:
        raise HTTPException(422, detail=[{"loc": ["body"], "msg": str(exc), "type": "value_error"}]) from None
    return {**info.as_dict(), "token": secret}


@router.delete("/tokens/{token_id}", tags=["auth"], status_code=204, responses=NOT_FOUND)
def revoke_token(request: Request, principal: Admin, token_id: Id) -> None:
    auth: AuthStore = request.app.state.services.auth
    if not auth.revoke(token_id, org=principal.org, actor=principal.actor):
        raise _not_found("active token", token_id)
