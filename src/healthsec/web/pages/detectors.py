"""Detectors & models page: what runs and what learns (progress), dead letters, model versions with their
evaluation figures, and promote / retire for administrators through services.models."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from healthsec.services import detectors as detector_use
from healthsec.services import models as model_use
from healthsec.services.common import NotFound, Refused
from healthsec.store.auth import Role
from healthsec.web.core import Changer, ConsoleRoute, Forbidden, Signed

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
Kind = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9-]*$")]
Version = Annotated[int, Path(ge=1, le=1_000_000)]


@router.get("/detectors", response_class=HTMLResponse)
def detectors_page(console: Signed) -> HTMLResponse:
    states = detector_use.detector_states(console.store, console.settings)
    letters = detector_use.dead_letters(console.store, limit=50)
    artefacts = model_use.list_models(console.store)
    counts: dict[str, int] = {}
    for s in states:
        key = str(s.get("state", "")).split(" ")[0]
        counts[key] = counts.get(key, 0) + 1
    return console.render(
        "detectors.html",
        active="detectors",
        title="Detectors & models",
        states=states,
        counts=counts,
        letters=letters,
        artefacts=sorted(artefacts, key=lambda a: (a.kind, -a.version)),
        is_admin=console.viewer.role is Role.ADMIN,
    )


@router.post("/models/{kind}/{version}/{action}")
def change_model(console: Changer, kind: Kind, version: Version, action: str) -> Response:
    """Promote (after checking the artefact loads) or retire a model version; administrators only."""
    from healthsec.detect.artefacts_load import ArtefactRefused
    from healthsec.store.models import ArtefactNotFound

    if console.viewer.role is not Role.ADMIN:
        raise Forbidden(f"a {console.viewer.role.value} token may not promote or retire models (admin only)")
    try:
        if action == "promote":
            model_use.promote_model(console.store, kind, version, actor=console.viewer.actor)
        elif action == "retire":
            model_use.retire_model(console.store, kind, version, actor=console.viewer.actor)
        else:
            raise NotFound("model action", action)
    except ArtefactNotFound as exc:
        raise NotFound("model", f"{kind}:{version}", message=str(exc)) from None
    except ArtefactRefused as exc:
        raise Refused(str(exc)) from None
    return RedirectResponse("/detectors#models", status_code=303)
