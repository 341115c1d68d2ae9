"""``healthsec outputs list|render|backfill``: SIEM destinations of alerts and incidents (docs/siem.md).

Delivery is ``healthsec notify dispatch``: the same outbox, retries, backoff and dead letters as the case
notifications (``healthsec notify list --status dead``, ``notify requeue``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer

from healthsec.commands.adapter import FormatOption
from healthsec.commands.groups import DbOption, console, fail

T = TypeVar("T")

outputs_app = typer.Typer(
    help="SIEM outputs (OCSF, ECS, CEF, syslog, Splunk HEC): list, render, backfill.", no_args_is_help=True
)


def _with_store(db: str | None, fn: Callable[[Any, Any], T]) -> T:
    from healthsec.commands.adapter import opened
    from healthsec.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise fail(str(exc)) from None
    with opened(db) as store:
        return fn(store, settings)


@outputs_app.command("list")
def list_outputs(fmt: FormatOption = "table") -> None:
    """The destinations the settings configure (``[[outputs]]``), each an outbox channel ``out:<name>``."""
    from healthsec.commands.adapter import emit, wants_json
    from healthsec.config import ConfigError, load_settings
    from healthsec.services.outputs import describe

    as_json = wants_json(fmt)
    try:
        rows = describe(load_settings())
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if as_json:
        emit(rows)
        return
    if not rows:
        console.print("no outputs configured: add [[outputs]] tables (docs/siem.md)", markup=False)
    for r in rows:
        console.print(
            f"{r['name']}: {r['format']} over {r['transport']} to {r['target']} "
            f"({r['findings']}, from {r['min_severity']})",
            highlight=False,
            soft_wrap=True,
        )


@outputs_app.command("render")
def render(
    fmt: Annotated[str, typer.Option("--format", help="ocsf, ecs or cef.")] = "ocsf",
    kind: Annotated[str, typer.Option("--kind", help="alert or incident.")] = "alert",
    limit: Annotated[int, typer.Option(help="How many, oldest first.")] = 10,
    db: DbOption = None,
) -> None:
    """Print stored alerts or incidents in one format, validated (one record per line)."""
    from healthsec.respond.siem import FORMATS, FormatError
    from healthsec.services.outputs import render_stored

    if fmt not in FORMATS or kind not in ("alert", "incident"):
        raise fail(f"--format is one of {', '.join(FORMATS)}; --kind alert or incident")
    try:
        lines = _with_store(db, lambda st, se: render_stored(st, se, fmt, kind=kind, limit=limit))
    except FormatError as exc:
        raise fail(str(exc)) from None
    for line in lines:
        typer.echo(line)


@outputs_app.command("backfill")
def backfill(
    since: Annotated[
        str | None, typer.Option(help="Only alerts and incidents from this ISO time on.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Queue stored alerts and incidents for every destination (what is already queued is not again)."""
    from healthsec.model.common import parse_utc
    from healthsec.services.outputs import backfill as run

    try:
        start: datetime | None = parse_utc(since) if since else None
    except ValueError:
        raise fail(f"--since {since!r} is not an ISO-8601 time with a zone") from None
    counts = _with_store(db, lambda st, se: run(st, se, since=start))
    console.print(
        f"queued {counts['queued']} message(s) for {counts['alerts']} alert(s) and "
        f"{counts['incidents']} incident(s); deliver with `healthsec notify dispatch`",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(outputs_app, name="outputs")
