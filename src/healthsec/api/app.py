"""FastAPI application factory: REST v1, auth, health and Prometheus metrics, other engineers' routers."""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from healthsec import __version__
from healthsec.api import analysis, ingest, routes, security, unavailable
from healthsec.api.auth import ERROR_RESPONSES, INGEST_ROLES, Reader, bearer, current_principal
from healthsec.api.live import LiveSources
from healthsec.bus.metrics import ServiceMetrics
from healthsec.config import Settings
from healthsec.model import Event
from healthsec.store import Store
from healthsec.store.auth import AuthStore

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What the routes reach through ``request.app.state.services``."""

    settings: Settings
    store: Store
    auth: AuthStore
    metrics: ServiceMetrics
    sink: ingest.IngestSink
    nats: Any = None  # (client, jetstream, config) when bus == "nats"
    mounted: tuple[str, ...] = ()
    pending: set[asyncio.Task[int]] = field(default_factory=set)
    live: LiveSources | None = None
    deps: unavailable.Dependencies | None = None


class LimitAndMeasure:
    """Pure ASGI middleware: time every request (body limits: ``api.security.BodyLimit``)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status_code = 500

        async def capture(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.metrics.latency.labels(scope["method"], path, str(status_code)).observe(
                time.perf_counter() - start
            )


_fhir_caller: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar("healthsec_fhir_caller")


async def _fhir_principal(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """Auth for the FHIR routes (sensor/admin); async so the organisation reaches ``on_events``."""
    principal = current_principal(request, creds)
    if principal.role not in INGEST_ROLES:
        raise HTTPException(403, detail=f"role {principal.role.value} may not ingest")
    _fhir_caller.set((principal.org, principal.actor))


def _sharing_keys(settings: Settings) -> Any:
    """The sharing community's keys from ``sharing_secret_file`` (None: TAXII serves no objects, 503)."""
    if settings.sharing_secret_file is None:
        return None
    from healthsec.share.keys import load_keys

    return load_keys(settings.sharing_secret_file)  # what `share --key-file` reads: the same keys


def _mount_optional(app: FastAPI, settings: Settings) -> list[str]:
    """Mount routers other capabilities provide (TAXII 2.1, FHIR AuditEvent) when they are installed."""
    mounted: list[str] = []
    try:
        taxii = importlib.import_module("healthsec.share.taxii_server")
    except ImportError:
        taxii = None
    if taxii is not None and hasattr(taxii, "create_taxii_router"):
        # TAXII partners authenticate with their own (HTTP Basic) credentials against the sharing tables of
        # this server's organisation (settings.org); the REST tokens do not apply there.
        def own_store() -> Store:
            services: Services = app.state.services
            return services.store.for_org(settings.org)

        config = taxii.TaxiiConfig(public_url=settings.taxii_public_url)
        app.include_router(taxii.create_taxii_router(own_store, config=config, keys=_sharing_keys(settings)))
        mounted.append("taxii2.1")
    try:
        fhir = importlib.import_module("healthsec.ingest.fhir")
    except ImportError:
        fhir = None
    if fhir is not None and hasattr(fhir, "create_router"):

        def on_events(events: Sequence[Event]) -> None:
            # The FHIR router calls back synchronously from its async handler: the in-process pipeline
            # writes at once; with NATS the publish is scheduled on the loop (kept until it completes).
            services: Services = app.state.services
            org, actor = _fhir_caller.get()
            services.metrics.events_in.labels("api", "fhir").inc(len(events))
            audit = services.store.for_org(org).audit
            audit.record(actor, "events.ingest", None, count=len(events), via="fhir")
            if isinstance(services.sink, ingest.MemorySink):
                services.sink.deliver(org, list(events), None)
                return
            task = asyncio.get_running_loop().create_task(
                services.sink.submit(org, [ingest.event_body(e) for e in events], list(events))
            )
            services.pending.add(task)
            task.add_done_callback(services.pending.discard)

        app.include_router(
            fhir.create_router(on_events, prefix="/api/v1/fhir"),
            dependencies=[Depends(_fhir_principal)],
            responses={**ERROR_RESPONSES, 422: {"description": "Some or all AuditEvents rejected"}},
        )
        mounted.append("fhir")
    return mounted


def _service_status(services: Services, deps: Any = None) -> tuple[bool, dict[str, Any]]:
    """Whether the service is up, and the details only an authenticated caller sees."""
    checks: dict[str, str] = {}
    try:
        with services.store.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        checks["db"] = "ok"
        if deps is not None:
            deps.db.ok()
    except Exception as exc:  # report, do not crash the probe
        checks["db"] = f"error: {type(exc).__name__}"
        if deps is not None:
            deps.db.lost(exc)
    if services.nats is not None:
        checks["bus"] = "ok" if services.nats[0].is_connected else "reconnecting"
    else:
        checks["bus"] = "memory"
    ok = checks["db"] == "ok" and checks["bus"] != "reconnecting"
    live = services.live.status() if services.live is not None else {}
    ok = ok and all(src["up"] for src in live.values())
    body = {"version": __version__, "checks": checks, "routers": list(services.mounted), "live_sources": live}
    return ok, body


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (``healthsec serve --workers N``): settings from the environment."""
    from healthsec.config import load_settings

    return create_app(load_settings())


def _owner(role: str) -> str:
    """A name for this process in detection leases."""
    import os
    import socket

    return f"{role}:{socket.gethostname()}:{os.getpid()}"[:64]


async def _flush_when_idle(sink: ingest.MemorySink, idle_s: float) -> None:
    """Detect the last open hour once no events arrived for ``idle_s`` seconds (in-process service)."""
    flushed_at = 0.0
    while True:
        await asyncio.sleep(min(1.0, idle_s))
        if sink.last_event > flushed_at and time.monotonic() - sink.last_event >= idle_s:
            flushed_at = sink.last_event
            try:
                await sink.flush()
            except Exception as exc:  # the database may be away; the next quiet period tries again
                log.warning("detection flush failed (%s)", type(exc).__name__)
                flushed_at = 0.0


def _intel_polling(settings: Settings, store: Store) -> asyncio.Task[None] | None:
    """The scheduled CSAF provider poll (``services.intel.poll_on_schedule``): off, and nothing fetched,
    unless ``intel_provider_urls`` is configured."""
    if not settings.intel_provider_urls:
        return None
    from healthsec.services.intel import CsafImport, http_fetch, poll_on_schedule

    def done(res: CsafImport | Exception) -> None:
        if isinstance(res, Exception):
            log.warning("CSAF provider poll failed (%s)", type(res).__name__)
        else:
            log.info("CSAF provider poll: %d advisories stored, %d refused", res.stored, len(res.errors))

    urls = settings.intel_provider_urls
    return asyncio.create_task(
        poll_on_schedule(store, urls, settings.intel_poll_interval_s, http_fetch(), done)
    )


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    sink: ingest.IngestSink | None = None,
) -> FastAPI:
    """Build the API; ``store``/``sink`` may be injected (tests, embedding), else come from ``settings``."""
    metrics = ServiceMetrics("api")
    deps = unavailable.Dependencies(settings.retry_after_s)

    def build(the_store: Store, the_sink: ingest.IngestSink | None, nats_state: Any) -> Services:
        if the_sink is None:
            from healthsec.pipeline import Detection
            from healthsec.services.playbooks import on_incidents

            detection = Detection(
                the_store,
                settings,
                owner=_owner("api"),
                metrics=metrics,
                role="api",
                on_incidents=on_incidents,
            )
            the_sink = ingest.MemorySink(detection)
        return Services(
            settings,
            the_store,
            AuthStore(the_store.engine),
            metrics,
            the_sink,
            nats_state,
            tuple(mounted),
            deps=deps,
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from healthsec.app import nats_config, open_store

        nats_state: Any = None
        own_store = store is None
        if own_store:
            the_store = open_store(settings.db, settings.org, settings)
            the_sink = sink
            if the_sink is None and settings.bus == "nats":
                from healthsec.bus.nats import connect

                cfg = nats_config(settings)
                nc, js = await connect(cfg, name="healthsec-api", watch=deps.bus)
                nats_state = (nc, js, cfg)
                the_sink = ingest.NatsSink(js, cfg, deps.bus)
                metrics.up.labels("api", "nats").set(1)
            app.state.services = build(the_store, the_sink, nats_state)
        services: Services = app.state.services
        services.live = LiveSources(settings, services.sink, metrics)
        await services.live.start()
        flusher = None
        if isinstance(services.sink, ingest.MemorySink):
            flusher = asyncio.create_task(_flush_when_idle(services.sink, settings.detection_idle_s))
        polling = _intel_polling(settings, services.store)
        metrics.up.labels("api", "http").set(1)
        try:
            yield
        finally:
            metrics.up.labels("api", "http").set(0)
            for task in (flusher, polling):
                if task is not None:
                    task.cancel()
            await services.live.stop()
            if nats_state is not None:
                from healthsec.bus.nats import close

                await close(nats_state[0])
            if own_store:
                app.state.services.store.close()

    app = FastAPI(
        title="healthsec",
        version=__version__,
        description=(
            "AI-driven cyber-defence for hospitals: REST v1. "
            "Authenticate with `Authorization: Bearer <token>`."
        ),
        lifespan=lifespan,
        # the interactive pages load their scripts from a CDN: off unless asked for (/openapi.json stays)
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
    )
    app.state.deps = deps  # a lost database met in a middleware answers 503 too (security.CatchAll)
    security.install(app, settings.max_body_bytes)  # auth before any body, limits, headers, quiet errors
    security.document(app, ingest.EVENT_COMPONENTS)  # the per-kind event schemas, strings' limits
    app.add_middleware(LimitAndMeasure, metrics=metrics)
    app.include_router(importlib.import_module("healthsec.api.cases").router)  # cases, clocks, playbooks
    app.include_router(ingest.router)
    app.include_router(routes.router)
    app.include_router(analysis.router)
    app.include_router(importlib.import_module("healthsec.api.models").router)
    app.include_router(importlib.import_module("healthsec.api.detectors").router)
    app.include_router(importlib.import_module("healthsec.api.intel").router)
    mounted = _mount_optional(app, settings)
    importlib.import_module("healthsec.web").install(app)  # the console at / (after the API's routes)
    if store is not None:  # injected (tests, embedding): ready without a lifespan
        app.state.services = build(store, sink, None)
    unavailable.install(app, deps)

    @app.get(
        "/healthz",
        tags=["service"],
        summary="Up or down (no authentication; details at /api/v1/status)",
        responses={503: {"description": "Database, bus or a live source unavailable"}},
    )
    async def healthz(request: Request) -> JSONResponse:
        ok, _ = await asyncio.to_thread(_service_status, request.app.state.services, deps)
        return JSONResponse({"status": "ok" if ok else "degraded"}, status_code=200 if ok else 503)

    @app.get("/api/v1/status", tags=["service"], responses=ERROR_RESPONSES)
    async def service_status(principal: Reader, request: Request) -> dict[str, Any]:
        """Dependencies and live sources in detail (counts, ports, the last error's kind, never input)."""
        ok, body = await asyncio.to_thread(_service_status, request.app.state.services, deps)
        return {"status": "ok" if ok else "degraded", **body}

    @app.get(
        "/metrics",
        tags=["service"],
        summary="Prometheus metrics (events in, alerts out, lag, errors)",
        response_class=PlainTextResponse,
    )
    async def prometheus(request: Request) -> Response:
        services: Services = request.app.state.services
        if services.nats is not None:
            from healthsec.bus.nats import consumer_lag

            lag = await consumer_lag(services.nats[1], services.nats[2])
            if lag is not None:
                metrics.lag.labels("api").set(lag)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app
