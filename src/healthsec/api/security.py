"""HTTP hardening for every route: the token checked before any body is read, bodies counted as they
stream, control characters refused in parameters, security headers, one-line errors, quiet 422s.

Each piece is a small pure-ASGI middleware or an exception handler; :func:`install` puts them on the app
in order (outermost first: headers, catch-all, body limit, parameter check, bearer gate).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo, field_validator
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from healthsec.api.auth import authenticate
from healthsec.model.limits import control_character, text_problems

log = logging.getLogger(__name__)

REST_PREFIX = "/api/v1"
#: a JSON API answer is data, never a page: nothing may run, load or frame it
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#: FastAPI's interactive pages (off by default, ``api_docs``) run scripts from a CDN: no API CSP there
DOC_PAGES = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def _problem(status: int, loc: Sequence[str | int], msg: str, kind: str) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": list(loc), "msg": msg, "type": kind}]}, status_code=status)


class _HttpOnly:
    """A pure-ASGI middleware that handles HTTP requests and passes everything else (lifespan) through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class _Watched:
    """A ``send`` that remembers whether the response has started (then no other answer can be sent)."""

    def __init__(self, send: Send) -> None:
        self.send, self.started = send, False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self.send(message)


class BodyTooLarge(HTTPException):
    """More body bytes arrived than the limit allows (whatever the framing: Content-Length or chunked)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=_too_large(limit), headers={"Connection": "close"})  # type: ignore[arg-type]


class BodyLimit:
    """413 for a declared Content-Length over the limit at once; streamed bytes are counted as they are
    received, so a chunked body stops being read at the limit instead of being buffered whole."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                close = {"Connection": "close"}  # the rest of the body is not read: stop the upload
                await JSONResponse({"detail": _too_large(self.max_body)}, 413, close)(scope, receive, send)
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        watch = _Watched(send)
        try:
            await self.app(scope, counted, watch)
        except BodyTooLarge:
            if watch.started:
                raise
            close = {"Connection": "close"}
            await JSONResponse({"detail": _too_large(self.max_body)}, 413, close)(scope, receive, send)


def _too_large(limit: int) -> list[dict[str, Any]]:
    return [{"loc": ["body"], "msg": f"body larger than {limit} bytes", "type": "too_large"}]


class ParameterCheck:
    """400 naming the parameter for a control character (NUL included) in a path or query parameter.

    TAXII routes answer in their own error format and check their parameters themselves."""

    def __init__(self, app: ASGIApp, skip: tuple[str, ...] = ("/taxii2",)) -> None:
        self.app, self.skip = app, skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(self.skip):
            await self.app(scope, receive, send)
            return
        problem = _parameter_problem(scope)
        if problem is not None:
            await _problem(400, *problem, "control_character")(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _parameter_problem(scope: Scope) -> tuple[list[str | int], str] | None:
    reason = control_character(str(scope.get("path", "")))
    if reason is not None:
        return ["path"], reason
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace"):
        for part in (name, value):
            reason = control_character(part)
            if reason is not None:
                return ["query", name if part is value and control_character(name) is None else "?"], reason
    return None


def _close_if_body(scope: Scope) -> dict[str, str]:
    """``Connection: close`` for a refused request that carries a body: the server stops receiving it
    instead of reading it to the end to keep the connection."""
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value not in (b"", b"0")):
            return {"Connection": "close"}
    return {}


class BearerGate:
    """Every REST route needs a bearer token: it is checked here, before the body is read at all (an
    anonymous upload gets 401 having sent nothing the server keeps), throttled per client and token id."""

    def __init__(self, app: ASGIApp, prefix: str = REST_PREFIX) -> None:
        self.app, self.prefix = app, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not (path == self.prefix or path.startswith(self.prefix + "/")):
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), b"")
        scheme, _, token = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            response = JSONResponse(
                {"detail": "missing bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer", **_close_if_body(scope)},
            )
            await response(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "-"
        try:
            info = await asyncio.to_thread(authenticate, scope["app"], token.strip(), client)
        except HTTPException as exc:
            headers = {**(exc.headers or {}), **_close_if_body(scope)}
            await JSONResponse({"detail": exc.detail}, exc.status_code, headers)(scope, receive, send)
            return
        scope.setdefault("state", {})["token"] = info
        await self.app(scope, receive, send)


class SecurityHeaders(_HttpOnly):
    """Headers every response carries: nosniff, no framing, no referrer; API data is never cached and
    gets a deny-all CSP unless the route set its own (the console's pages do)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k != b"server"]
                present = {k.lower() for k, _ in headers}
                extra = [h for h in SECURITY_HEADERS if h[0] not in present]
                if b"content-security-policy" not in present and scope.get("path") not in DOC_PAGES:
                    extra.append((b"content-security-policy", API_CSP.encode()))
                if b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers + extra}
            await send(message)

        await self.app(scope, receive, with_headers)


class CatchAll(_HttpOnly):
    """An unexpected error becomes one log line without request content or values (no traceback: a
    database error's text may quote bound values) and a bare 500; nothing is re-raised to the server."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = _Watched(send)
        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            from healthsec.api.unavailable import is_bus_error
            from healthsec.bus.worker import is_transient

            # a lost database or broker met outside a route (e.g. the token check) is a 503 "retry" too
            deps = getattr(getattr(scope.get("app"), "state", None), "deps", None)
            if deps is not None and (is_bus_error(exc) or is_transient(exc)):
                (deps.bus if is_bus_error(exc) else deps.db).lost(exc)
                if not watch.started:
                    what = "message bus" if is_bus_error(exc) else "database"
                    await deps.unavailable(what)(scope, receive, send)
                return
            log.error("unhandled %s on %s %s", type(exc).__name__, scope.get("method"), scope.get("path"))
            if not watch.started:
                await JSONResponse({"detail": "internal error"}, status_code=500)(scope, receive, send)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each wrong field without echoing what was sent (it may be large, or hold PHI)."""
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": detail[:50]}, status_code=422)


def _path_methods(app: FastAPI) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """Each documented path as a pattern with its methods, from the OpenAPI document (made once)."""
    cached: list[tuple[re.Pattern[str], frozenset[str]]] | None = getattr(app.state, "path_methods", None)
    if cached is None:
        cached = [
            (compile_path(path)[0], frozenset(m.upper() for m in ops))
            for path, ops in app.openapi().get("paths", {}).items()
        ]
        app.state.path_methods = cached
    return cached


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """HTTP errors as FastAPI answers them; a 405 lists in ``Allow`` every method the path accepts (routes
    of one path with different methods are separate routes, and Starlette names only the first)."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        path = request.url.path
        # the most specific documented path wins (/alerts/triage over /alerts/{alert_id}), as in routing
        matches = [
            (pattern.pattern.count("(?P<"), methods)
            for pattern, methods in _path_methods(request.app)
            if pattern.match(path)
        ]
        fewest = min((n for n, _ in matches), default=0)
        allowed = {m for n, methods in matches if n == fewest for m in methods}
        headers["Allow"] = ", ".join(sorted(allowed))
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers or None)


def install(app: FastAPI, max_body: int) -> None:
    """Put the hardening on ``app`` (call before other middleware that should see its answers)."""
    app.add_middleware(BearerGate)
    app.add_middleware(ParameterCheck)
    app.add_middleware(BodyLimit, max_body=max_body)
    app.add_middleware(CatchAll)
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)


class Body(BaseModel):
    """Base of every JSON request body: unknown fields refused, and no control character in any string
    (tab, newline and carriage return allowed, except in the fields named in ``single_line``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=lambda s, c: _single_line_schema(s, c))
    single_line: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str) and info.field_name in cls.single_line:
            reason = control_character(value)
            if reason is not None:
                raise ValueError(reason)
        for where, reason in text_problems(value):
            raise ValueError(f"{'.'.join(map(str, where))}: {reason}" if where else reason)
        return value


#: an RFC 3339 date-time as the document's ``format: date-time`` says (pydantic alone also reads "0.5" or
#: "1700000000" as a Unix time, which the document refuses); the offset may be left out (read as UTC)
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?")


def _date_time(value: Any) -> Any:
    if isinstance(value, str) and not _DATE_TIME.fullmatch(value):
        raise ValueError("expected an RFC 3339 date-time such as 2026-01-01T10:00:00Z")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_date_time)]

#: what the document says of every string parameter, and of body strings (free text keeps \t \n \r)
ONE_LINE = "^[^\\x00-\\x1f\\x7f]*$"
TEXT = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*$"


def _strings_refuse_controls(node: Any, pattern: str) -> None:
    """Give every plain string schema under ``node`` the control-character pattern (in place)."""
    if isinstance(node, dict):
        if node.get("type") == "string" and not ({"pattern", "enum", "const", "format"} & set(node)):
            node["pattern"] = pattern
        for value in node.values():
            _strings_refuse_controls(value, pattern)
    elif isinstance(node, list):
        for value in node:
            _strings_refuse_controls(value, pattern)


def document(app: FastAPI, components: dict[str, Any] | None = None) -> None:
    """Make ``/openapi.json`` say what the server enforces: control characters refused in parameters
    and bodies (one-line fields refuse newlines too), and the given component schemas published."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if getattr(app.state, "openapi_documented", False) and app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        schema.setdefault("components", {}).setdefault("schemas", {}).update(components or {})
        for ops in schema.get("paths", {}).values():
            for op in ops.values():
                for param in op.get("parameters", []) if isinstance(op, dict) else []:
                    if param.get("in") in ("path", "query"):
                        _strings_refuse_controls(param.get("schema"), ONE_LINE)
                if isinstance(op, dict):
                    _strings_refuse_controls(op.get("requestBody"), TEXT)
        _strings_refuse_controls(schema["components"]["schemas"], TEXT)
        app.state.openapi_documented = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _single_line_schema(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    for name in getattr(cls, "single_line", ()):
        prop = schema.get("properties", {}).get(name)
        for variant in [prop, *(prop or {}).get("anyOf", [])]:
            if isinstance(variant, dict) and variant.get("type") == "string" and "pattern" not in variant:
                variant["pattern"] = ONE_LINE
