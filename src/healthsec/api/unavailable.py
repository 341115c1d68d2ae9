"""A lost database or broker answers 503 with Retry-After (never 500), logged once per outage."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from healthsec.bus.nats import BusUnavailable
from healthsec.bus.worker import is_transient
from healthsec.observability import DependencyWatch

log = logging.getLogger(__name__)


class Dependencies:
    """The API's view of its dependencies: one watch each, so an outage writes two lines in all."""

    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        self.db = DependencyWatch("database", log)
        self.bus = DependencyWatch("message bus", log)

    def unavailable(self, what: str) -> JSONResponse:
        return JSONResponse(
            {"detail": f"{what} unavailable; retry"},
            status_code=503,
            headers={"Retry-After": str(self.retry_after_s)},
        )


def is_bus_error(exc: BaseException) -> bool:
    """The broker refused or is away (after the publish deadline, or a lag/health query)."""
    from nats.errors import Error as NatsError

    return isinstance(exc, (BusUnavailable, NatsError))


def install(app: FastAPI, deps: Dependencies) -> None:
    """Register the handlers on ``app``: specific exception classes, so Starlette answers them itself
    (a handler for ``Exception`` would re-raise to the server, which logs a traceback per request)."""
    import psycopg
    from nats.errors import Error as NatsError
    from sqlalchemy.exc import DBAPIError, DisconnectionError

    async def on_unavailable(request: Request, exc: Exception) -> JSONResponse:
        if is_bus_error(exc):
            deps.bus.lost(exc)
            return deps.unavailable("message bus")
        if is_transient(exc):
            deps.db.lost(exc)
            return deps.unavailable("database")
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    for cls in (DBAPIError, DisconnectionError, psycopg.Error, ConnectionError, BusUnavailable, NatsError):
        app.add_exception_handler(cls, on_unavailable)
