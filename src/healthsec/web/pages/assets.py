"""Assets & risk and Attack paths pages: the inventory with findings and risk, one asset, paths as a graph."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from healthsec.services import assets as asset_use
from healthsec.services import risk as risk_use
from healthsec.services.common import attack_kb
from healthsec.web.core import ConsoleRoute, Signed
from healthsec.web.paths_svg import layout, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Text = Annotated[str, Query(max_length=200)]


def criticality_label(value: Any) -> str:
    return str(getattr(value, "name", value)).lower().replace("_", " ")


def inventory_view(rows: list[asset_use.InventoryRow], q: str = "", zone: str = "") -> dict[str, Any]:
    """Rows the inventory table shows (filtered by a search text and a zone) and the zones to pick from."""
    needle = q.strip().lower()
    zones = sorted({r.asset.zone for r in rows})
    shown = []
    for r in rows:
        a = r.asset
        hay = " ".join(x for x in (a.id, a.name, a.ip, a.role, a.vendor, a.product) if x).lower()
        if (needle and needle not in hay) or (zone and a.zone != zone):
            continue
        shown.append(
            {
                "key": a.id,
                "name": a.name,
                "ip": a.ip,
                "role": a.role,
                "zone": a.zone,
                "criticality": criticality_label(a.criticality),
                "criticality_rank": int(a.criticality),
                "patient_connected": r.patient_connected,
                "product": " ".join(x for x in (a.vendor, a.product, a.version) if x) or None,
                "vulns": len(r.vulnerabilities),
                "max_cvss": r.max_cvss,
                "kev": r.known_exploited,
                "risk": r.risk.score,
            }
        )
    return {"rows": shown, "zones": zones, "total": len(rows)}


@router.get("/assets", response_class=HTMLResponse)
def assets_page(console: Signed, q: Text = "", zone: Text = "") -> HTMLResponse:
    view = inventory_view(asset_use.inventory(console.store), q, zone)
    return console.render("assets.html", active="assets", title="Assets & risk", q=q, zone=zone, **view)


@router.get("/assets/{key}", response_class=HTMLResponse)
def asset_page(console: Signed, key: str) -> HTMLResponse:
    from healthsec.respond.containment import patient_connected
    from healthsec.services.intel import match_rows

    detail = asset_use.asset_detail(console.store, key)  # NotFound -> 404 page
    a = detail.asset
    matches = [m for m in match_rows(console.store) if m["asset_id"] == a.id]
    vulns = sorted(detail.vulnerabilities, key=lambda v: (-(v.base_score or 0.0), v.cve))
    return console.render(
        "asset.html",
        active="assets",
        title=a.name,
        asset=a,
        criticality=criticality_label(a.criticality),
        patient_connected=patient_connected(a),
        profile=detail.profile,
        vulns=vulns,
        risk=detail.risk,
        explanation=detail.risk.explain(),
        matches=matches,
    )


@router.get("/paths", response_class=HTMLResponse)
def paths_page(console: Signed, to: Text = "", top: Annotated[int, Query(ge=1, le=50)] = 8) -> HTMLResponse:
    kb, kb_note = attack_kb()
    res = risk_use.attack_paths(console.store, to=to or None, top=top, fixes=5, kb=kb)  # NotFound -> 404
    graph = layout(res.paths, res.fixes)
    title = f"Attack paths to {to}" if to else "Attack paths to critical clinical assets"
    return console.render(
        "paths.html",
        active="paths",
        title="Attack paths",
        heading=title,
        to=to,
        top=top,
        svg=Markup(render(graph, title)),  # noqa: S704 - every label escaped in paths_svg
        paths=res.paths,
        fixes=res.fixes,
        kb_note=kb_note,
    )
