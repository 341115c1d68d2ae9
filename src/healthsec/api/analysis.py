"""REST v1 routes over the analysis and sharing capabilities: risk, attack paths, reports, partners."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from healthsec.api.auth import ERROR_RESPONSES, Admin, Reader, Sharer, org_store
from healthsec.store import Store

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

Top = Annotated[int, Query(ge=1, le=500, description="how many to return")]


def _plain(obj: Any) -> Any:
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) and not isinstance(obj, type) else obj


def _inputs(store: Store) -> tuple[list[Any], list[Any], list[Any]]:
    """Assets, profiles and vulnerabilities of one organisation (the latter two when that module exists)."""
    from healthsec.store.vulns import ProfileRepository, VulnRepository

    assets = store.assets.list()
    profiles = ProfileRepository(store.engine, store.org).list()
    vulns = VulnRepository(store.engine, store.org).list()
    return assets, profiles, vulns


@router.get("/risk", tags=["analysis"])
def asset_risk(request: Request, principal: Reader, top: Top = 50) -> dict[str, Any]:
    """Assets ranked by risk (likelihood x impact, 0-100) with the factors that explain each score."""
    from healthsec.analyze.risk import RiskModel

    store = org_store(request, principal)
    assets, profiles, vulns = _inputs(store)
    model = RiskModel.build(assets, profiles, vulns, store.alerts.all())
    items = [{**_plain(r), "explanation": r.explain()} for r in model.ranking(top)]
    return {"items": items}


@router.get("/paths", tags=["analysis"])
def attack_paths(request: Request, principal: Reader, top: Top = 5) -> dict[str, Any]:
    """The most likely attack paths to critical assets, and the fixes that cut the most risk."""
    from healthsec.analyze.paths import AttackGraph

    store = org_store(request, principal)
    assets, profiles, vulns = _inputs(store)
    if not assets:
        return {"paths": [], "fixes": []}
    graph = AttackGraph(assets, profiles, vulns)
    paths = graph.best_paths(top=top)
    fixes = graph.recommend(max_fixes=top) if paths else []
    return {
        "paths": [{**_plain(p), "description": p.describe()} for p in paths],
        "fixes": [{**_plain(f), "reduction": f.reduction} for f in fixes],
    }


@router.get("/reports/incidents", tags=["reports"], response_class=HTMLResponse)
def incident_report(request: Request, principal: Reader) -> HTMLResponse:
    """A self-contained HTML report of the organisation's incidents and alerts (no scripts)."""
    from healthsec.respond.report import render_report

    store = org_store(request, principal)
    incidents = store.incidents.list(limit=1000)
    alerts = store.alerts.all()
    summary = {"organisation": principal.org, "incidents": len(incidents), "alerts": len(alerts)}
    return HTMLResponse(render_report(summary, incidents, alerts, title=f"incident report - {principal.org}"))


class PartnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    organisation: str = Field(min_length=1, max_length=256)
    secret: str | None = Field(
        default=None, min_length=16, max_length=256, description="their TAXII password"
    )
    url: str | None = Field(default=None, max_length=512)
    policy: dict[str, Any] | None = None


@router.get("/partners", tags=["sharing"])
def list_partners(request: Request, principal: Sharer) -> dict[str, Any]:
    """Sharing partners of the caller's organisation (never their secrets)."""
    from healthsec.store.sharing import Sharing

    partners = Sharing.of(org_store(request, principal)).partners.list()
    return {"items": partners}


@router.put("/partners/{name}", tags=["sharing"])
def put_partner(
    request: Request,
    principal: Admin,
    body: PartnerIn,
    name: Annotated[str, Path(min_length=1, max_length=128)],
) -> dict[str, Any]:
    """Add or update a partner; a secret given here is stored hashed and never shown again."""
    from healthsec.store.sharing import Sharing

    store = org_store(request, principal)
    sharing = Sharing.of(store)
    try:
        sharing.partners.add(name, body.organisation, secret=body.secret, url=body.url, policy=body.policy)
    except ValueError as exc:
        raise HTTPException(422, detail=[{"loc": ["body"], "msg": str(exc), "type": "value_error"}]) from None
    store.audit.record(principal.actor, "partner.put", name, organisation=body.organisation)
    partner = sharing.partners.get(name)
    assert partner is not None
    return partner
