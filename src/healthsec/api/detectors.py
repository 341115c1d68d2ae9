"""REST v1: the engine's detectors with their state, and their dead letters (scoped to the caller's org)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from healthsec.api.auth import ERROR_RESPONSES, Reader, org_store

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["detectors"])


@router.get("/detectors")
def list_detectors(request: Request, principal: Reader) -> dict[str, Any]:
    """Every registered detector: needs (nothing, learning, model) and state (running, learning, …)."""
    from healthsec.services.detectors import detector_states

    return {"items": detector_states(org_store(request, principal), request.app.state.services.settings)}


@router.get("/detectors/dead-letters")
def list_dead_letters(
    request: Request,
    principal: Reader,
    detector: Annotated[str | None, Query(max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")] = None,
) -> dict[str, Any]:
    """Events a detector raised on, newest first."""
    from healthsec.services.detectors import dead_letters

    return {"items": dead_letters(org_store(request, principal), detector)}
