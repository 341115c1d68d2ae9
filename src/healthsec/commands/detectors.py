"""``healthsec detectors list|dead-letters|replay``: what the engine runs and what it could not process."""

from __future__ import annotations

from typing import Annotated

import typer

from healthsec.commands.adapter import FormatOption
from healthsec.commands.groups import DbOption, console, fail

detectors_app = typer.Typer(
    help="The detection engine's detectors: state, dead letters.", no_args_is_help=True
)


def _open(db: str | None):  # type: ignore[no-untyped-def]
    from healthsec.app import open_store
    from healthsec.config import ConfigError, load_settings
    from healthsec.store import StoreError

    try:
        settings = load_settings()
        return open_store(db, settings=settings), settings
    except (StoreError, ConfigError) as exc:
        raise fail(str(exc)) from None


@detectors_app.command("list")
def list_detectors(db: DbOption = None, fmt: FormatOption = "table") -> None:
    """Every registered detector and its state: running, learning, waiting for a model, disabled."""
    import orjson
    from rich.table import Table

    from healthsec.detect.registry import UnknownDetector
    from healthsec.services.detectors import detector_states

    store, settings = _open(db)
    try:
        states = detector_states(store, settings)
    except UnknownDetector as exc:
        raise fail(str(exc)) from None
    if fmt == "json":
        typer.echo(orjson.dumps(states).decode())
        return
    table = Table(title="Detectors (default profile unless configured)")
    table.add_column("detector", no_wrap=True)
    table.add_column("needs", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for s in states:
        state = s["state"]
        if state == "learning" and s.get("progress") is not None:
            state = f"learning ({s['progress']:.0%})"
        table.add_row(s["name"], s["needs"], state, s.get("detail") or "")
    console.print(table)
    running = sum(1 for s in states if s["state"] == "running")
    console.print(f"{running} running of {len(states)} registered", highlight=False)


@detectors_app.command("dead-letters")
def list_dead_letters(
    db: DbOption = None,
    detector: Annotated[str | None, typer.Option(help="Only this detector.")] = None,
    fmt: FormatOption = "table",
) -> None:
    """Events a detector raised on (detector, event id, reason): fix the detector, then `replay`."""
    import orjson

    from healthsec.services.detectors import dead_letters

    store, _ = _open(db)
    items = dead_letters(store, detector)
    if fmt == "json":
        typer.echo(orjson.dumps(items).decode())
        return
    for d in items:
        console.print(f"{d['at']}  {d['detector']}  event {d['event_id']}: {d['reason']}", highlight=False)
    console.print(f"{len(items)} dead letter(s)", highlight=False)


@detectors_app.command("replay")
def replay(db: DbOption = None) -> None:
    """Run every dead-lettered event again through its detector; those that pass leave the list."""
    from healthsec.services.detectors import replay_dead_letters

    store, settings = _open(db)
    out = replay_dead_letters(store, settings)
    console.print(
        f"replayed {out['replayed']}, still failing {out['still_failing']}, alerts {out['alerts']}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(detectors_app, name="detectors")
