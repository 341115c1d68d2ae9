"""The analyst's console: server-rendered pages at ``/`` over the same use cases (services/) as the API."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

# Page modules under healthsec.web.pages, each exposing ``router``; order only matters for equal paths.
PAGES: tuple[str, ...] = (
    "overview",
    "incidents",
    "alerts",
    "assets",
    "cases",
    "sharing",
    "intel",
    "detectors",
    "audit",
)


def install(app: FastAPI) -> None:
    """Mount the console on an API app: sign-in, pages, static files, security headers, HTML 404s."""
    from fastapi import Request
    from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
    from fastapi.exceptions import RequestValidationError
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.responses import Response

    from healthsec.web import signin
    from healthsec.web.core import STATIC, error_page
    from healthsec.web.headers import NOT_CONSOLE, ConsoleHeaders

    app.include_router(signin.router)
    for name in PAGES:
        app.include_router(importlib.import_module(f"healthsec.web.pages.{name}").router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(ConsoleHeaders)
    # the API's own answers (installed earlier by api.security: 422 without the input, 405 with Allow)
    api_validation = app.exception_handlers.get(RequestValidationError, request_validation_exception_handler)
    api_http = app.exception_handlers.get(StarletteHTTPException, http_exception_handler)

    @app.exception_handler(RequestValidationError)
    async def _form_errors(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith(NOT_CONSOLE):
            return await api_validation(request, exc)  # type: ignore[no-any-return]
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
        return error_page(request, 422, "Not accepted", problems or "the request is malformed")

    @app.exception_handler(StarletteHTTPException)
    async def _pages_for_people(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and not request.url.path.startswith(NOT_CONSOLE):
            return error_page(request, 404, "Not found", "There is no page at this address.")
        return await api_http(request, exc)  # type: ignore[no-any-return]
