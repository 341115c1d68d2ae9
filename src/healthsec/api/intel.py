"""REST v1 routes over threat intelligence: advisory matches (what matched and why) and advisories."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, HTTPException, Path, Request

from healthsec.api.auth import ERROR_RESPONSES, Reader, org_store

router = APIRouter(prefix="/api/v1/intel", responses=ERROR_RESPONSES)


@router.get("/matches", tags=["intel"])
def intel_matches(request: Request, principal: Reader) -> dict[str, Any]:
    """Advisory-to-asset matches: confidence, method, reasons, CVEs, KEV status and highest EPSS."""
    from healthsec.services.intel import match_rows

    return {"items": match_rows(org_store(request, principal))}


@router.get(
    "/advisories/{advisory_id}",
    tags=["intel"],
    responses={404: {"description": "No such advisory in your organisation"}},
)
def intel_advisory(
    request: Request, principal: Reader, advisory_id: str = Path(max_length=128)
) -> dict[str, Any]:
    """One stored advisory with its extractive summary, products and vulnerabilities."""
    from healthsec.store.intel import intel

    adv = intel(org_store(request, principal)).advisory(advisory_id)
    if adv is None:
        raise HTTPException(404, f"no advisory {advisory_id!r}")
    return dataclasses.asdict(adv)
