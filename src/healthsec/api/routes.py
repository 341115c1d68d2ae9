"""REST v1 routes over the store: alerts, incidents, assets, audit, tokens; all scoped to the caller's org."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

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
from healthsec.model import IncidentStatus
from healthsec.model.codec import asset_from_dict, to_dict
from healthsec.store.auth import AuthError, AuthStore, Role

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="items to skip")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Not found in your organisation"}}
AuditReader = Annotated[Principal, Depends(require(Role.ADMIN, Role.AUDITOR))]
Id = Annotated[str, Path(min_length=1, max_length=128)]


class Page(BaseModel):
    """One page of a list; ``next_offset`` is None on the last page."""

    items: list[dict[str, Any]]
    limit: int
    offset: int
    next_offset: int | None


class StatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: IncidentStatus
    note: str | None = Field(default=None, max_length=2000)


class AssetsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assets: list[dict[str, Any]] = Field(max_length=10_000)


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    role: Role
    ttl_days: int | None = Field(
        default=None, ge=1, le=3650, description="default: the server's token_ttl_days"
    )


class Count(BaseModel):
    count: int


def _page(items: list[dict[str, Any]], limit: int, offset: int) -> Page:
    return Page(
        items=items, limit=limit, offset=offset, next_offset=offset + limit if len(items) == limit else None
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
@router.get("/alerts", tags=["alerts"], response_model=Page)
def list_alerts(
    request: Request,
    principal: Reader,
    limit: Limit = 100,
    offset: Offset = 0,
    min_severity: Annotated[int | None, Query(ge=0, le=4)] = None,
    detector: Annotated[str | None, Query(max_length=128)] = None,
    since: datetime | None = None,
    incident_id: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    """Alerts of the caller's organisation, oldest first, filtered and paged."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    store = org_store(request, principal)
    # The hot read under load: the stored bodies are already the codec's dicts, so they are sent as they
    # are instead of rebuilt into Alerts and back.
    items = store.alerts.list_bodies(
        limit=limit,
        offset=offset,
        min_severity=min_severity,
        detector=detector,
        since=since,
        incident_id=incident_id,
    )
    page = {
        "items": items,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if len(items) == limit else None,
    }
    return Response(orjson.dumps(page), media_type="application/json")


@router.get("/alerts/{alert_id}", tags=["alerts"], responses=NOT_FOUND)
def get_alert(request: Request, principal: Reader, alert_id: Id) -> dict[str, Any]:
    alert = org_store(request, principal).alerts.get(alert_id)
    if alert is None:
        raise _not_found("alert", alert_id)
    return to_dict(alert)


# -- incidents --------------------------------------------------------------------------------------
@router.get("/incidents", tags=["incidents"], response_model=Page)
def list_incidents(
    request: Request,
    principal: Reader,
    limit: Limit = 100,
    offset: Offset = 0,
    status_: Annotated[IncidentStatus | None, Query(alias="status")] = None,
) -> Page:
    store = org_store(request, principal)
    items = store.incidents.list(limit=limit, offset=offset, status=status_.value if status_ else None)
    return _page([to_dict(i) for i in items], limit, offset)


@router.get("/incidents/{incident_id}", tags=["incidents"], responses=NOT_FOUND)
def get_incident(request: Request, principal: Reader, incident_id: Id) -> dict[str, Any]:
    inc = org_store(request, principal).incidents.get(incident_id)
    if inc is None:
        raise _not_found("incident", incident_id)
    return to_dict(inc)


@router.patch("/incidents/{incident_id}", tags=["incidents"], responses=NOT_FOUND)
def update_incident(
    request: Request, principal: Triager, incident_id: Id, body: StatusUpdate
) -> dict[str, Any]:
    store = org_store(request, principal)
    if not store.incidents.set_status(incident_id, body.status.value):
        raise _not_found("incident", incident_id)
    store.audit.record(
        principal.actor, "incident.status", incident_id, status=body.status.value, note=body.note
    )
    inc = store.incidents.get(incident_id)
    assert inc is not None
    return to_dict(inc)


# -- assets -----------------------------------------------------------------------------------------
@router.get("/assets", tags=["assets"], response_model=Page)
def list_assets(request: Request, principal: Reader, limit: Limit = 100, offset: Offset = 0) -> Page:
    assets = org_store(request, principal).assets.list()
    return _page([to_dict(a) for a in assets[offset : offset + limit]], limit, offset)


@router.put("/assets", tags=["assets"], response_model=Count)
def upsert_assets(request: Request, principal: Triager, body: AssetsIn) -> Count:
    parsed = []
    for index, raw in enumerate(body.assets):
        try:
            parsed.append(asset_from_dict(raw))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = [
                {
                    "loc": ["body", "assets", index],
                    "msg": f"{type(exc).__name__}: {exc}",
                    "type": "value_error",
                }
            ]
            raise HTTPException(422, detail=detail) from None
    store = org_store(request, principal)
    store.assets.upsert_many(parsed)
    store.audit.record(
        principal.actor, "assets.upsert", None, count=len(parsed), ids=[a.id for a in parsed][:100]
    )
    return Count(count=len(parsed))


# -- audit ------------------------------------------------------------------------------------------
@router.get("/audit", tags=["audit"], response_model=Page)
def list_audit(request: Request, principal: AuditReader, limit: Limit = 100) -> Page:
    rows = org_store(request, principal).audit.list(limit=limit)
    items = [{**r, "ts": _iso(r["ts"])} for r in rows]
    return _page(items, limit, 0)


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
