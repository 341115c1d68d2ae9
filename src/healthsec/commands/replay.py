"""``healthsec replay``: send the simulated hospital (or a recorded event file) to a running service."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from healthsec.commands.groups import console, fail

if TYPE_CHECKING:
    from healthsec.model import Asset, Event

BATCH = 500


def _simulated(seed: int, campaigns: Sequence[str] | None) -> tuple[list[Asset], list[Event]]:
    """The demo's two days (benign learning day, then the attack day), in time order."""
    from healthsec.sim import CAMPAIGNS, simulate

    baseline = simulate(seed, day=0, campaigns=())
    day = simulate(
        seed, day=1, hospital=baseline.hospital, campaigns=campaigns if campaigns else tuple(CAMPAIGNS)
    )
    return list(day.assets), sorted([*baseline.events, *day.events], key=lambda e: (e.ts, e.id))


def _recorded(path: Path) -> list[Event]:
    """Events from a JSON Lines file as ``healthsec`` writes them (one event per line, with ``kind``)."""
    import orjson

    from healthsec.model.codec import event_from_dict

    events = []
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                events.append(event_from_dict(orjson.loads(line)))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                raise fail(f"{path}:{n}: not an event ({type(exc).__name__}: {exc})") from None
    return sorted(events, key=lambda e: (e.ts, e.id))


def _foreign(path: Path, fmt: str) -> list[Event]:
    """Events of another sensor's file; parse errors are listed (record and reason) and the rest go on."""
    from healthsec.model import ParseError
    from healthsec.services.ingest_files import read_events, source_for

    try:
        source = source_for(path, fmt)
    except ValueError as exc:
        raise fail(str(exc)) from None
    errors: list[ParseError] = []
    events = sorted(read_events(source, errors), key=lambda e: (e.ts, e.id))
    _print_errors(errors)
    return events


def _print_errors(errors: Sequence[Any]) -> None:
    if errors:
        console.print(f"{len(errors)} record(s) skipped", highlight=False)
    for err in errors[:10]:
        console.print(f"[yellow]skipped[/] {err.describe()}", highlight=False, soft_wrap=True)


def _in_process(events_file: Path | None, fmt: str, db: str | None) -> None:
    import time as _time

    from healthsec.app import open_store
    from healthsec.config import ConfigError, load_settings
    from healthsec.services.ingest_files import run_file, source_for
    from healthsec.store import StoreError

    if events_file is None or not events_file.is_file():
        raise fail("an in-process run (no --to) needs an existing --file")
    if fmt == "healthsec":
        raise fail("in process, give --input-format suricata, wazuh or netflow (or send with --to)")
    try:
        source = source_for(events_file, fmt)
        settings = load_settings()
        store = open_store(db, settings=settings)
    except (ValueError, ConfigError, StoreError) as exc:
        raise fail(str(exc)) from None
    t0 = _time.perf_counter()
    try:
        run = run_file(store, settings, source)
    finally:
        store.close()
    secs = _time.perf_counter() - t0
    _print_errors(run.errors)
    rate = run.events / secs if secs > 0 else 0.0
    console.print(
        f"{events_file}: {run.events} events read ({run.new_events} new), {len(run.errors)} parse error(s), "
        f"{run.alerts} alerts, {run.incidents} incidents in {secs:.1f} s ({rate:,.0f} events/s)",
        highlight=False,
        soft_wrap=True,
    )
    for det, n in sorted(run.by_detector.items(), key=lambda x: -x[1]):
        console.print(f"  {n:>6}  {det}", highlight=False)


def _paced(events: Sequence[Event], speed: float | None) -> Iterator[list[Event]]:
    """Batches of events; with ``speed``, released when ``event time / speed`` has passed on the clock."""
    if not events:
        return
    t0, wall0 = events[0].ts, time.monotonic()
    batch: list[Event] = []
    for e in events:
        if speed is not None:
            due = wall0 + (e.ts - t0).total_seconds() / speed
            if due > time.monotonic():
                if batch:
                    yield batch
                    batch = []
                time.sleep(max(0.0, due - time.monotonic()))
        batch.append(e)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def replay(
    to: Annotated[
        str | None,
        typer.Option("--to", help="Base URL of the service, e.g. http://127.0.0.1:8080 (else: in process)."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="HEALTHSEC_TOKEN", help="API token (admin: sends the inventory too)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulated hospital (as in `healthsec demo`).")] = 7,
    events_file: Annotated[
        Path | None,
        typer.Option("--file", help="Replay this JSON Lines event file instead of the simulation."),
    ] = None,
    campaign: Annotated[
        list[str] | None, typer.Option("--campaign", help="Inject only these campaigns (repeatable).")
    ] = None,
    speed: Annotated[
        str, typer.Option(help="'max' (as fast as the service takes them) or a factor of real time, e.g. 60.")
    ] = "max",
    input_format: Annotated[
        str,
        typer.Option(
            "--input-format", help="--file is: healthsec (JSON Lines events), suricata, wazuh or netflow."
        ),
    ] = "healthsec",
    db: Annotated[
        str | None, typer.Option("--db", help="Store for an in-process run (without --to).")
    ] = None,
) -> None:
    """Send the simulated hospital (or recorded events) to a running service over HTTP, in time order.

    Without ``--to`` a ``--file`` runs in this process through the same engine and profile, into ``--db``.
    """
    import httpx
    import orjson

    from healthsec.model.codec import to_dict

    if to is None:
        _in_process(events_file, input_format, db)
        return
    if not token:
        raise fail("no token: pass --token or set $HEALTHSEC_TOKEN")
    try:
        factor = None if speed == "max" else float(speed)
    except ValueError:
        raise fail(f"--speed must be 'max' or a number, not {speed!r}") from None
    if factor is not None and factor <= 0:
        raise fail("--speed must be positive")
    if events_file is not None:
        if not events_file.is_file():
            raise fail(f"no such file: {events_file}")
        assets: list[Asset] = []
        events = (
            _recorded(events_file) if input_format == "healthsec" else _foreign(events_file, input_format)
        )
    else:
        assets, events = _simulated(seed, campaign)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    sent = 0
    with httpx.Client(base_url=to.rstrip("/"), headers=headers, timeout=60.0) as client:

        def post(method: str, path: str, body: bytes) -> None:
            for attempt in range(8):
                try:
                    r = client.request(method, path, content=body)
                except httpx.HTTPError as exc:
                    raise fail(f"{to}: {type(exc).__name__}: {exc}") from None
                if r.status_code == 503 and attempt < 7:  # the service asks us to retry
                    time.sleep(min(0.25 * 2**attempt, 5.0))
                    continue
                if r.status_code >= 400:
                    raise fail(f"{method} {path}: HTTP {r.status_code}: {r.text[:300]}")
                return

        if assets:
            post("PUT", "/api/v1/assets", orjson.dumps({"assets": [to_dict(a) for a in assets]}))
        for batch in _paced(events, factor):
            post("POST", "/api/v1/events", orjson.dumps({"events": [to_dict(e) for e in batch]}))
            sent += len(batch)
    console.print(f"replayed {sent} events and {len(assets)} assets to {to}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
