"""Intel page: advisories (CSAF) and their KEV / EPSS matches against the inventory with confidence and
reasons, one advisory with its summary, and ATT&CK tags of a report's text (when a tagger is trained)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from healthsec.services import intel as intel_use
from healthsec.services.common import Invalid
from healthsec.web.core import Changer, Console, ConsoleRoute, Signed, form_fields

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
MAX_TAG_TEXT = 200_000


def match_view(
    rows: list[dict[str, Any]], min_confidence: float = 0.0, kev_only: bool = False
) -> list[dict[str, Any]]:
    """Matches best first: known-exploited before others, then confidence, then EPSS."""
    kept = [r for r in rows if r["confidence"] >= min_confidence and (r["kev"] or not kev_only)]
    return sorted(kept, key=lambda r: (not r["kev"], -r["confidence"], -(r["epss_max"] or 0.0), r["asset"]))


def _render(
    console: Console, *, min_conf: float, kev: bool, tags: Any = None, text: str = "", note: str | None = None
) -> HTMLResponse:
    overview = intel_use.intel_overview(console.store)
    matches = match_view(intel_use.match_rows(console.store), min_conf, kev)
    return console.render(
        "intel.html",
        active="intel",
        title="Intel",
        matches=matches,
        advisories=overview.advisories,
        feeds=overview.feeds,
        min_conf=min_conf,
        kev=kev,
        tags=tags,
        text=text,
        tag_note=note,
    )


@router.get("/intel", response_class=HTMLResponse)
def intel_page(
    console: Signed,
    min_conf: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
    kev: bool = False,
) -> HTMLResponse:
    return _render(console, min_conf=min_conf, kev=kev)


@router.get("/intel/advisories/{advisory_id}", response_class=HTMLResponse)
def advisory_page(console: Signed, advisory_id: Annotated[str, Path(max_length=128)]) -> HTMLResponse:
    adv = intel_use.advisory(console.store, advisory_id)  # NotFound -> the 404 page
    matches = [m for m in intel_use.match_rows(console.store) if m["advisory"] == adv.id]
    return console.render("advisory.html", active="intel", title=adv.id, adv=adv, matches=matches)


@router.post("/intel/tag", response_class=HTMLResponse)
async def tag_text(console: Changer, request: Request) -> HTMLResponse:
    """ATT&CK techniques a report's text describes, with the sentences that support each (nothing stored)."""
    from healthsec.services.intel_text import default_tagger_dir, load_tagger, tag_blocks

    fields = await form_fields(request)
    text = (fields.get("text") or [""])[0]
    if not text.strip():
        raise Invalid(
            "the field 'text' is required: paste a report, an advisory or a STIX report description"
        )
    if len(text) > MAX_TAG_TEXT:
        raise Invalid(
            f"the text holds {len(text)} characters; at most {MAX_TAG_TEXT} here (the CLI takes any size)"
        )
    try:
        tagger = load_tagger(default_tagger_dir(console.settings.intel_tagger_dir))
    except FileNotFoundError as exc:
        return _render(console, min_conf=0.0, kev=False, text=text, note=str(exc))
    out = tag_blocks(tagger, [text])
    tags = [{"id": t, "score": out.scores[t], "evidence": out.evidence.get(t, [])} for t in out.techniques]
    note = None if tags else "no technique reaches the tagger's threshold in this text"
    return _render(console, min_conf=0.0, kev=False, tags=tags, text=text, note=note)
