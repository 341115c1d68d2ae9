"""REST v1 routes over model artefacts: list, show, promote and retire (scoped to the caller's org)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request

from healthsec.api.auth import ERROR_RESPONSES, Reader, Triager, org_store

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["models"])

Kind = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9-]*$")]
Version = Annotated[int, Path(ge=1, le=1_000_000)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such model in your organisation"}}


@router.get("/models")
def list_models(
    request: Request,
    principal: Reader,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[str | None, Query(pattern="^(candidate|promoted|retired)$")] = None,
) -> dict[str, Any]:
    """Stored model artefacts (metadata only, never the files), by kind and version."""
    from healthsec.services.models import list_models as use_case

    items = use_case(org_store(request, principal), kind=kind, status=status)
    return {"items": [a.to_dict() for a in items]}


@router.get("/models/{ref}", responses=NOT_FOUND)
def get_model(
    request: Request, principal: Reader, ref: Annotated[str, Path(min_length=1, max_length=64)]
) -> dict[str, Any]:
    """One artefact by id (``flows-v3``), ``kind:version``, or kind (its promoted, else newest)."""
    from healthsec.services.models import show_model
    from healthsec.store.models import ArtefactNotFound

    try:
        return show_model(org_store(request, principal), ref).to_dict()
    except ArtefactNotFound as exc:
        raise HTTPException(404, detail=str(exc)) from None


@router.post(
    "/models/{kind}/{version}/promote",
    responses={**NOT_FOUND, 409: {"description": "The artefact does not load (named in 'detail')"}},
)
def promote_model(request: Request, principal: Triager, kind: Kind, version: Version) -> dict[str, Any]:
    """Put a version in service after checking it loads; the previous promoted one becomes retired."""
    from healthsec.detect.artefacts_load import ArtefactRefused
    from healthsec.services.models import promote_model as use_case
    from healthsec.store.models import ArtefactNotFound

    try:
        return use_case(org_store(request, principal), kind, version, actor=principal.actor).to_dict()
    except ArtefactNotFound as exc:
        raise HTTPException(404, detail=str(exc)) from None
    except ArtefactRefused as exc:
        raise HTTPException(409, detail=str(exc)) from None


@router.post("/models/{kind}/{version}/retire", responses=NOT_FOUND)
def retire_model(request: Request, principal: Triager, kind: Kind, version: Version) -> dict[str, Any]:
    """Take a version out of service; it stays stored and can be promoted again."""
    from healthsec.services.models import retire_model as use_case
    from healthsec.store.models import ArtefactNotFound

    try:
        return use_case(org_store(request, principal), kind, version, actor=principal.actor).to_dict()
    except ArtefactNotFound as exc:
        raise HTTPException(404, detail=str(exc)) from None
