"""Sign-in with an API token of the organisation, and sign-out; the session lives server-side."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from healthsec.services import console_sessions as sessions
from healthsec.services.common import Refused
from healthsec.web.core import COOKIE, CSRF_FIELD, ConsoleRoute, Signed, form_fields, page, policy

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
PRE_COOKIE = "healthsec_signin"  # double-submit token of the sign-in form (there is no session yet)


def _safe_next(value: str | None) -> str:
    """Only a path of this site (never //host or a scheme) is followed after sign-in."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _form(request: Request, *, status_code: int = 200, error: str | None = None, nxt: str = "/") -> Response:
    token = secrets.token_urlsafe(24)
    response = page(request, "sign_in.html", status_code=status_code, error=error, next=nxt, pre=token)
    response.set_cookie(
        PRE_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/sign-in",
        max_age=1800,
    )
    return response


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, next: str | None = None) -> Response:
    return _form(request, nxt=_safe_next(next))


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    fields = await form_fields(request)
    nxt = _safe_next((fields.get("next") or ["/"])[0])
    presented = (fields.get(CSRF_FIELD) or [""])[0]
    expected = request.cookies.get(PRE_COOKIE) or ""
    if not expected or not hmac.compare_digest(presented.encode(), expected.encode()):
        return _form(request, status_code=403, error="The form expired; please sign in again.", nxt=nxt)
    services = request.app.state.services
    try:
        session_id, _ = sessions.sign_in(
            services.store, (fields.get("token") or [""])[0], policy(services.settings)
        )
    except Refused as exc:
        return _form(request, status_code=401, error=f"Sign-in refused: {exc}.", nxt=nxt)
    response = RedirectResponse(nxt, status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
        max_age=services.settings.console_max_hours * 3600,
    )
    response.delete_cookie(PRE_COOKIE, path="/sign-in", httponly=True, samesite="strict")
    return response


@router.post("/sign-out")
async def sign_out(request: Request, console: Signed) -> Response:
    # signing out needs the session's CSRF token too (a forged sign-out is a nuisance, not a leak)
    fields = await form_fields(request)
    if not sessions.csrf_matches(console.viewer, (fields.get(CSRF_FIELD) or [""])[0]):
        return page(
            request, "error.html", status_code=403, title="Not allowed", message="Missing form token."
        )
    sessions.sign_out(request.app.state.services.store, request.cookies.get(COOKIE), console.viewer)
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
