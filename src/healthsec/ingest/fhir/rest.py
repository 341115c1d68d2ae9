"""A FHIR REST endpoint for AuditEvents (FastAPI APIRouter factory): POST one AuditEvent or a Bundle."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from healthsec.ingest.fhir.auditevent import iter_bundle_or_resource, parse_resource
from healthsec.model import ParseError, RecordAccess

FHIR_JSON = "application/fhir+json"
OnEvents = Callable[[Sequence[RecordAccess]], None]


def _outcome(issues: list[dict[str, Any]], accepted: int) -> dict[str, Any]:
    info = {
        "severity": "information",
        "code": "informational",
        "diagnostics": f"accepted {accepted} AuditEvent(s)",
    }
    return {"resourceType": "OperationOutcome", "issue": [info, *issues]}


def create_router(on_events: OnEvents, *, prefix: str = "/fhir") -> APIRouter:
    """Routes: ``POST {prefix}/AuditEvent`` (one resource or a Bundle) and ``POST {prefix}`` (a Bundle).

    Valid AuditEvents are handed to ``on_events`` even when others in the same Bundle are rejected; the
    reply is an OperationOutcome naming each rejected entry and why (201 all accepted, 422 some or all
    rejected, 400 body not JSON).
    """
    router = APIRouter(prefix=prefix, tags=["fhir"])

    async def _ingest(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            issue = {"severity": "error", "code": "structure", "diagnostics": f"body is not JSON: {exc.msg}"}
            return JSONResponse(_outcome([issue], 0), status_code=400, media_type=FHIR_JSON)
        accepted: list[RecordAccess] = []
        issues: list[dict[str, Any]] = []
        for index, item in enumerate(iter_bundle_or_resource(obj)):
            result = parse_resource(item, locator="POST AuditEvent", record=index)
            if isinstance(result, ParseError):
                issues.append(
                    {
                        "severity": "error",
                        "code": "invalid",
                        "diagnostics": f"entry {index}: {result.reason}",
                        "expression": [f"Bundle.entry[{index}].resource"],
                    }
                )
            else:
                accepted.append(result)
        if accepted:
            on_events(accepted)
        status = 201 if not issues else 422
        return JSONResponse(_outcome(issues, len(accepted)), status_code=status, media_type=FHIR_JSON)

    router.add_api_route("/AuditEvent", _ingest, methods=["POST"], status_code=201)
    router.add_api_route("", _ingest, methods=["POST"], status_code=201)
    return router
