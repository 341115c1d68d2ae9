"""Service commands: ``healthsec serve``, ``worker``, ``admin ...`` (orgs, tokens) and ``db upgrade``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from healthsec.commands.adapter import FormatOption
from healthsec.commands.groups import DbOption, console, fail
from healthsec.config import ConfigError, Settings, hand_down, load_settings
from healthsec.store import StoreError

admin_app = typer.Typer(help="Organisations and API tokens (run on the server).", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (else $HEALTHSEC_CONFIG).")
]
NatsUrlOption = Annotated[
    str | None, typer.Option("--nats-url", help="NATS server, nats://host:port (else nats_url).")
]
GRACE_S = 5  # seconds in-flight requests get on SIGTERM/SIGINT before the server stops anyway


def _check_broker(settings: Settings) -> None:
    """Fail with one line, before binding, when the broker cannot be reached."""
    import logging

    from healthsec.app import nats_config
    from healthsec.bus.nats import BusUnavailable, close, connect
    from healthsec.observability import DependencyWatch

    quiet = logging.getLogger("healthsec.probe")
    quiet.disabled = True  # the one error line below says it all

    async def probe() -> None:
        cfg = nats_config(settings)
        nc, _ = await connect(cfg, name="healthsec-probe", watch=DependencyWatch(cfg.url, quiet))
        await close(nc)

    try:
        asyncio.run(probe())
    except BusUnavailable as exc:
        raise fail(str(exc)) from None


def _check_live_ports(settings: Settings) -> None:
    """Fail with one line, before starting, when a live source's port is taken (not a startup traceback)."""
    import socket

    from healthsec.api.live import host_port

    wanted = (
        ("HL7 listener", settings.hl7_listen, 2575, (socket.SOCK_STREAM,)),
        ("DICOM monitor", settings.dicom_listen, 11112, (socket.SOCK_STREAM,)),
        ("syslog receiver", settings.syslog_listen, 514, (socket.SOCK_DGRAM, socket.SOCK_STREAM)),
        ("NetFlow collector", settings.netflow_listen, 2055, (socket.SOCK_DGRAM,)),
    )
    for name, listen, default, kinds in wanted:
        if not listen:
            continue
        host, port = host_port(listen, default)
        for kind in kinds:
            try:
                family = socket.getaddrinfo(host, port, type=kind)[0][0]
                with socket.socket(family, kind) as probe:
                    if kind == socket.SOCK_STREAM:  # as asyncio's servers do: TIME_WAIT is no conflict
                        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind((host, port))
            except OSError as exc:
                raise fail(f"cannot start the {name} on {host}:{port}: {exc.strerror or exc}") from None


def _settings(config: Path | None, **overrides: object) -> Settings:
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def _auth(db: str | None, settings: Settings):  # type: ignore[no-untyped-def]
    from healthsec.app import open_store
    from healthsec.store.auth import AuthStore

    try:
        store = open_store(db, settings=settings)
    except StoreError as exc:
        raise fail(str(exc)) from None
    return store, AuthStore(store.engine)


def serve(
    db: DbOption = None,
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080; 0 picks a free one).")] = None,
    bus: Annotated[str | None, typer.Option(help="memory (default) or nats.")] = None,
    mqtt_url: Annotated[str | None, typer.Option(help="Subscribe to telemetry at mqtt://host:port.")] = None,
    hl7_listen: Annotated[str | None, typer.Option(help="Run the HL7 MLLP listener on host:port.")] = None,
    dicom_listen: Annotated[str | None, typer.Option(help="Run the DICOM monitor on host:port.")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="API processes (live sources need 1).")] = 1,
    nats_url: NatsUrlOption = None,
) -> None:
    """Run the REST API (uvicorn). With --bus nats, ingestion goes to JetStream for `healthsec worker`."""
    import uvicorn

    from healthsec.api import create_app
    from healthsec.app import resolve_db

    settings = _settings(
        config,
        api_host=host,
        api_port=port,
        bus=bus,
        mqtt_url=mqtt_url,
        hl7_listen=hl7_listen,
        dicom_listen=dicom_listen,
        nats_url=nats_url,
    )
    settings = settings.model_copy(update={"db": resolve_db(db) if db else settings.db})
    try:
        from healthsec.app import open_store

        open_store(settings.db, settings=settings).close()  # fail fast, with one line, before binding
    except StoreError as exc:
        raise fail(str(exc)) from None
    if settings.bus == "nats":
        _check_broker(settings)
    _check_live_ports(settings)
    console.print(f"healthsec API on http://{settings.api_host}:{settings.api_port} (bus: {settings.bus})")
    if workers == 1:
        uvicorn.run(
            create_app(settings),
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
            timeout_graceful_shutdown=GRACE_S,
            server_header=False,  # no "server: uvicorn" banner
        )
        return
    if settings.mqtt_url or settings.hl7_listen or settings.dicom_listen:
        raise fail("live sources bind their own ports: run them with --workers 1 (or in a separate serve)")
    # worker processes rebuild the settings from the environment: hand the resolved values down
    hand_down(
        {"HEALTHSEC_DB": settings.db, "HEALTHSEC_BUS": settings.bus, "HEALTHSEC_NATS_URL": settings.nats_url}
    )
    uvicorn.run(
        "healthsec.api.app:app_from_env",
        factory=True,
        workers=workers,
        timeout_worker_healthcheck=120,
        timeout_graceful_shutdown=GRACE_S,  # a loaded host imports slowly; the default kills workers at start
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        server_header=False,
    )


def worker(
    db: DbOption = None,
    config: ConfigOption = None,
    metrics_port: Annotated[
        int, typer.Option(help="Serve Prometheus metrics on 127.0.0.1:PORT (0: off).")
    ] = 0,
    nats_url: NatsUrlOption = None,
) -> None:
    """Consume the NATS JetStream work queue: store events, run detectors, write alerts (at-least-once)."""
    from prometheus_client import start_http_server

    from healthsec.api.app import _owner
    from healthsec.app import nats_config, open_store
    from healthsec.bus.metrics import ServiceMetrics
    from healthsec.bus.nats import BusUnavailable
    from healthsec.bus.worker import Worker
    from healthsec.pipeline import Detection

    settings = _settings(config, nats_url=nats_url)
    _check_broker(settings)  # before loading the detectors: an unreachable broker fails in seconds
    metrics = ServiceMetrics("worker")
    try:
        store = open_store(db, settings=settings)
        from healthsec.services.playbooks import on_incidents

        detection = Detection(
            store, settings, owner=_owner("worker"), metrics=metrics, on_incidents=on_incidents
        )
    except (StoreError, ValueError) as exc:
        raise fail(str(exc)) from None
    if metrics_port:
        start_http_server(metrics_port, addr="127.0.0.1", registry=metrics.registry)
    cfg = nats_config(settings)
    runner = Worker(detection, cfg, metrics)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await runner.run(stop)

    console.print(f"healthsec worker on {cfg.url} stream {cfg.stream} consumer {cfg.durable}")
    try:
        asyncio.run(main())
    except BusUnavailable as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    console.print(f"worker stopped after {runner.processed_messages} messages")


@admin_app.command("create-org")
def create_org(
    org: Annotated[str, typer.Argument(help="Organisation id (a-z 0-9 _ -).")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Create an organisation (tenant)."""
    from healthsec.store.auth import AuthError

    store, auth = _auth(db, _settings(config))
    try:
        created = auth.create_org(org, name, actor="cli")
    except AuthError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    console.print(f"organisation {org} {'created' if created else 'already exists'}")


@admin_app.command("create-token")
def create_token(
    org: Annotated[str, typer.Option(help="Organisation the token belongs to.")],
    role: Annotated[str, typer.Option(help="admin, analyst, auditor, sensor or partner.")],
    name: Annotated[str, typer.Option(help="Who or what uses it (e.g. 'soc-alice', 'sensor-icu').")],
    ttl_days: Annotated[int | None, typer.Option(help="Lifetime in days (default: token_ttl_days).")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Create an API token; the secret is printed once and stored only as a hash."""
    from healthsec.store.auth import AuthError

    settings = _settings(config)
    store, auth = _auth(db, settings)
    try:
        info, secret = auth.create_token(
            org, role, name, ttl=timedelta(days=ttl_days or settings.token_ttl_days), actor="cli"
        )
    except AuthError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    expires = info.expires_at.isoformat(timespec="seconds") if info.expires_at else "never"
    console.print(f"token {info.id} for {info.org} ({info.role.value}), expires {expires}", highlight=False)
    console.print("secret (shown once, keep it safe):", highlight=False)
    typer.echo(secret)


@admin_app.command("list-tokens")
def list_tokens(
    org: Annotated[str | None, typer.Option(help="Only this organisation.")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    fmt: FormatOption = "table",
) -> None:
    """List tokens (never their secrets)."""
    from healthsec.commands.adapter import emit, wants_json

    as_json = wants_json(fmt)
    store, auth = _auth(db, _settings(config))
    try:
        tokens = auth.list_tokens(org)
    finally:
        store.close()
    if as_json:
        emit(
            [
                {
                    "id": t.id,
                    "org": t.org,
                    "role": t.role.value,
                    "name": t.name,
                    "state": "active" if t.active() else ("revoked" if t.revoked_at else "expired"),
                    "expires_at": t.expires_at.isoformat(timespec="seconds") if t.expires_at else None,
                }
                for t in tokens
            ]
        )
        return
    for t in tokens:
        state = "active" if t.active() else ("revoked" if t.revoked_at else "expired")
        expires = t.expires_at.isoformat(timespec="seconds") if t.expires_at else "never"
        typer.echo(f"{t.id}  {t.org:<16} {t.role.value:<8} {state:<8} expires {expires}  {t.name}")
    if not tokens:
        typer.echo("no tokens")


@admin_app.command("revoke-token")
def revoke_token(
    token_id: Annotated[str, typer.Argument(help="Token id (the part after 'hst_' and before the dot).")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Revoke a token at once."""
    store, auth = _auth(db, _settings(config))
    try:
        ok = auth.revoke(token_id, actor="cli")
    finally:
        store.close()
    if not ok:
        raise fail(f"no active token {token_id}")
    console.print(f"token {token_id} revoked")


@db_app.command("upgrade")
def upgrade(db: DbOption = None, config: ConfigOption = None) -> None:
    """Apply every Alembic migration (idempotent)."""
    from healthsec.app import resolve_db
    from healthsec.store import Store

    settings = _settings(config)
    try:
        Store.open(resolve_db(db) if db else settings.db, settings.org).close()
    except StoreError as exc:
        raise fail(str(exc)) from None
    console.print("database is at the newest schema")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("worker")(worker)
    app.add_typer(admin_app, name="admin")
    app.add_typer(db_app, name="db")
