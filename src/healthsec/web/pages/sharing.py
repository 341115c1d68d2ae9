"""Sharing page: partners and their TLP policy, a preview of exactly what the exit door lets out for an
incident (pseudonymised, nothing sent), what was sent and received, and our TAXII collections."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from healthsec.services import share as share_use
from healthsec.services.common import Refused
from healthsec.services.incidents import list_incidents
from healthsec.store.auth import Role
from healthsec.web.core import Console, ConsoleRoute, Forbidden, Signed

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Text = Annotated[str, Query(max_length=200)]
TLPS = ("clear", "green", "amber", "amber+strict")
SHARERS = (Role.ADMIN, Role.ANALYST)  # as GET /api/v1/partners (a partner token cannot sign in)


def partner_rows(states: list[share_use.PartnerState]) -> list[dict[str, Any]]:
    """Partners as the page lists them: the policy in words (a partner without one gets TLP:GREEN)."""
    out = []
    for s in states:
        p = s.partner
        policy = p.get("policy") or {}
        types = policy.get("allowed_types")
        out.append(
            {
                "name": p["name"],
                "organisation": p["organisation"],
                "url": p.get("url"),
                "max_tlp": str(policy.get("max_tlp", "green")).upper(),
                "types": "all" if types is None else ", ".join(types) or "none",
                "min_confidence": policy.get("min_confidence", 0),
                "anonymous": bool(policy.get("anonymous", False)),
                "rights": s.rights,
                "cursor": s.cursor,
                "has_secret": p.get("has_secret", False),
            }
        )
    return out


def _preview(console: Console, incident: str, partner: str, tlp: str) -> tuple[Any, str | None]:
    """The exit door's output for one incident, or why there is none (no key, policy withholds all)."""
    from healthsec.share.keys import KeyMissing, load_keys

    try:
        keys = load_keys(console.settings.sharing_secret_file)
    except KeyMissing as exc:
        return None, f"no preview: {exc}"
    try:
        return (
            share_use.preview_export(
                console.store,
                keys,
                producer=console.store.org,
                incident_id=incident,
                partner=partner if partner and partner != "community" else None,
                tlp=tlp,
            ),
            None,
        )
    except Refused as exc:
        return None, str(exc)


@router.get("/sharing", response_class=HTMLResponse)
def sharing_page(
    console: Signed, incident: Text = "", partner: Text = "", tlp: Text = "amber"
) -> HTMLResponse:
    if console.viewer.role not in SHARERS:
        raise Forbidden(
            f"a {console.viewer.role.value} token may not see sharing partners (admin or analyst)"
        )
    partners = partner_rows(share_use.list_partners(console.store))
    overview = share_use.sharing_overview(console.store)
    recent = [r.incident for r in list_incidents(console.store, limit=50).items]
    preview, note = _preview(console, incident, partner, tlp) if incident else (None, None)
    return console.render(
        "sharing.html",
        active="sharing",
        title="Sharing",
        partners=partners,
        overview=overview,
        recent=recent,
        incident=incident,
        partner=partner or "community",
        tlp=tlp,
        tlps=TLPS,
        preview=preview,
        preview_note=note,
    )
