"""REST v1 routes over the analysis and sharing capabilities: risk, attack paths, reports, partners."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from healthsec.api.auth import ERROR_RESPONSES, Admin, Reader, Sharer, org_store
from healthsec.api.errors import answering
from healthsec.api.security import Body
from healthsec.services import risk as risk_use
from healthsec.services import share as share_use
from healthsec.services.common import attack_kb
from healthsec.store.auth import Role

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

Top = Annotated[int, Query(ge=1, le=500, description="how many to return")]


def _plain(obj: Any) -> Any:
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) and not isinstance(obj, type) else obj


@router.get("/risk", tags=["analysis"])
def asset_risk(request: Request, principal: Reader, top: Top = 50) -> dict[str, Any]:
    """Assets ranked by risk (likelihood x impact, 0-100) with the factors that explain each score."""
    with answering():
        ranked = risk_use.rank_assets(org_store(request, principal), top)
    return {"items": [{**_plain(r), "explanation": r.explain()} for r in ranked]}


@router.get("/paths", tags=["analysis"])
def attack_paths(request: Request, principal: Reader, top: Top = 5) -> dict[str, Any]:
    """The most likely attack paths to critical assets, and the fixes that cut the most risk."""
    with answering():
        res = risk_use.attack_paths(org_store(request, principal), top=top, fixes=top, kb=attack_kb()[0])
    return {
        "paths": [{**_plain(p), "description": p.describe()} for p in res.paths],
        "fixes": [{**_plain(f), "reduction": f.reduction} for f in res.fixes],
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


#: services.share.partner_url_problem as a pattern the document publishes and the model enforces: https to
#: a host name or address, plain http only to this machine
PARTNER_URL = r"^(https://[A-Za-z0-9.-]+|http://(localhost|127\.[0-9.]*|\[::1\]))(:[0-9]{1,5})?(/[!-~]*)?$"


class PartnerPolicyIn(Body):
    """What a partner may receive (share.policy.policy_from_dict, published): TLP:RED never leaves."""

    max_tlp: Literal["clear", "green", "amber", "amber+strict"] = Field(
        default="green", description="the highest TLP 2.0 level the partner receives"
    )
    allowed_types: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,248}[a-z0-9]$")]] | None = Field(
        default=None, max_length=64, description="STIX object types the partner receives (null: all)"
    )
    min_confidence: int = Field(default=0, ge=0, le=100, strict=True)
    anonymous: bool = Field(
        default=False, strict=True, description="our identity replaced by the community's"
    )


class PartnerIn(Body):
    single_line = frozenset({"organisation", "secret", "url"})
    organisation: str = Field(min_length=1, max_length=256)
    secret: str | None = Field(
        default=None, min_length=16, max_length=256, description="their TAXII password"
    )
    url: str | None = Field(default=None, max_length=512, pattern=PARTNER_URL)
    policy: PartnerPolicyIn | None = None


@router.get("/partners", tags=["sharing"])
def list_partners(request: Request, principal: Sharer) -> dict[str, Any]:
    """Sharing partners of the caller's organisation with their rights and pull cursor (never secrets); a
    ``partner`` token lists only the partner its name names."""
    rows = share_use.list_partners(org_store(request, principal))
    if principal.role is Role.PARTNER:  # a partner's token sees its own record only (token name = partner)
        rows = [r for r in rows if r.partner.get("name") == principal.name]
    return {"items": [{**r.partner, "rights": r.rights, "cursor": r.cursor} for r in rows]}


@router.put("/partners/{name}", tags=["sharing"])
def put_partner(
    request: Request,
    principal: Admin,
    body: PartnerIn,
    name: Annotated[str, Path(min_length=1, max_length=128)],
) -> dict[str, Any]:
    """Add or update a partner; a secret given here is stored hashed and never shown again."""
    with answering():
        return share_use.save_partner(
            org_store(request, principal),
            name,
            body.organisation,
            actor=principal.actor,
            secret=body.secret,
            url=body.url,
            policy=None if body.policy is None else body.policy.model_dump(),
        )
