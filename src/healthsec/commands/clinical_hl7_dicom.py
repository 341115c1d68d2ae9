"""``healthsec scan hl7|dicom`` and ``healthsec listen hl7|dicom``: inspect files, run listeners/proxies."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Literal

import orjson
import typer
from rich.table import Table

from healthsec.commands.adapter import FormatOption, JsonOption, wants_json
from healthsec.commands.groups import (
    DbOption,
    DetectorsOption,
    clip,
    console,
    fail,
    file_engine,
    listen_app,
    report_failures,
    scan_app,
    stop_on_sigterm,
)
from healthsec.ingest.base import without_raw_text
from healthsec.model import Alert, ClinicalMessage, Event, ParseError, Severity

PCAP_SUFFIXES = (".pcap", ".pcapng", ".cap")

BaselineOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--baseline", help="Benign traffic (files, folders, pcaps) to learn per-sender baselines from."
    ),
]
LoadOption = Annotated[
    Path | None, typer.Option("--load-baseline", help="A baseline JSON saved with --save-baseline.")
]
SaveOption = Annotated[
    Path | None, typer.Option("--save-baseline", help="Write the learnt baseline as JSON.")
]
StoreOption = Annotated[bool, typer.Option("--store/--no-store", help="Save events and alerts in the store.")]
DurationOption = Annotated[
    float | None, typer.Option("--duration", help="Stop after this many seconds (default: run until Ctrl-C).")
]
EveryOption = Annotated[
    float,
    typer.Option("--status-every", help="Seconds between checks of the live counts (printed on change)."),
]


def _phi_key() -> bytes | None:
    """Patient ids appear in alerts only as pseudonyms keyed by ``patient_key_file``, else not at all."""
    from healthsec.config import ConfigError, load_patient_key, load_settings

    try:
        return load_patient_key(load_settings())
    except ConfigError as exc:
        raise fail(str(exc)) from None


def _authority() -> str | None:
    """This hospital's MRN assigning authority (``patient_id_authority``): its MRNs join ids naming none."""
    from healthsec.config import load_settings

    return load_settings().patient_id_authority


_without_text = without_raw_text  # events are stored without the raw message (it carries PHI)


def _save(db: str | None, events: Sequence[Event], alerts: Sequence[Alert]) -> None:
    from healthsec.app import open_store
    from healthsec.store import StoreError

    try:
        store = open_store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None
    try:
        store.events.add_many([_without_text(e) for e in events])
        store.alerts.add_many(alerts)
    finally:
        store.close()


def _check_paths(paths: Iterable[Path]) -> None:
    for p in paths:
        if not p.exists():
            raise fail(f"{p}: no such file or directory")


def _print_errors(errors: Sequence[ParseError], limit: int = 20) -> None:
    for err in errors[:limit]:
        console.print(f"[yellow]parse error[/] {err.describe()}", highlight=False)
    if len(errors) > limit:
        console.print(f"[yellow]... and {len(errors) - limit} more parse errors[/]")


def _print_alerts(alerts: Sequence[Alert], as_json: bool) -> None:
    if as_json:
        from healthsec.model.codec import to_dict

        for a in alerts:
            typer.echo(orjson.dumps(to_dict(a)).decode())
        return
    if not alerts:
        console.print("no alerts")
        return
    table = Table("severity", "rule", "techniques", "explanation", show_lines=False)
    for a in sorted(alerts, key=lambda a: (-a.severity, a.detector)):
        table.add_row(
            a.severity.label, a.detector, ",".join(a.techniques), a.explanation
        )  # rich wraps at spaces
    console.print(table)


def _live_alert(alert: Alert) -> None:
    console.print(
        f"[bold red]ALERT[/] {alert.severity.label} {alert.detector} [{','.join(alert.techniques)}] "
        f"{clip(alert.explanation, 200)}",
        highlight=False,
    )


# ------------------------------------------------------------------------------------------------ HL7
def _hl7_items(paths: Sequence[Path]) -> list[ClinicalMessage | ParseError]:
    from healthsec.ingest.hl7 import HL7FileSource, HL7PcapSource
    from healthsec.ingest.hl7.files import HL7_SUFFIXES, expand_paths

    files = expand_paths(paths, HL7_SUFFIXES | frozenset(PCAP_SUFFIXES))
    pcaps = [p for p in files if p.suffix.lower() in PCAP_SUFFIXES]
    texts = [p for p in files if p.suffix.lower() not in PCAP_SUFFIXES]
    return [*HL7FileSource(texts).read(), *HL7PcapSource(pcaps).read()]


def _hl7_detector(baseline: list[Path] | None, load: Path | None, save: Path | None) -> object:
    from healthsec.detect.clinical.hl7 import HL7Detector

    det = HL7Detector(phi_key=_phi_key(), local_authority=_authority())
    if load:
        try:
            det.load_dict(orjson.loads(load.read_bytes()))
        except (OSError, ValueError, KeyError) as exc:
            raise fail(f"{load}: not a usable HL7 baseline ({exc})") from None
    if baseline:
        _check_paths(baseline)
        items = _hl7_items(baseline)
        det.fit([i for i in items if isinstance(i, ClinicalMessage)])
        console.print(
            f"baseline: {sum(isinstance(i, ClinicalMessage) for i in items)} messages, "
            f"{len(det.senders)} senders"
        )
    if save:
        save.write_bytes(orjson.dumps(det.to_dict(), option=orjson.OPT_INDENT_2))
        console.print(f"baseline written to {save}")
    return det


def scan_hl7(
    paths: Annotated[list[Path], typer.Argument(help="HL7 v2 files or folders (.hl7, .txt, ...) and pcaps.")],
    baseline: BaselineOption = None,
    load_baseline: LoadOption = None,
    save_baseline: SaveOption = None,
    db: DbOption = None,
    store: StoreOption = True,
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
    detectors: DetectorsOption = None,
) -> None:
    """Parse HL7 v2 files and captures and detect malformed, oversized and injected messages, unknown
    senders, unseen message types, floods, bulk queries and ACK anomalies. Without --baseline only the
    content rules run."""
    as_json = wants_json(fmt, as_json)
    from healthsec.detect.clinical.hl7 import HL7Detector

    _check_paths(paths)
    det = _hl7_detector(baseline, load_baseline, save_baseline)
    assert isinstance(det, HL7Detector)
    items = _hl7_items(paths)
    events = sorted((i for i in items if isinstance(i, ClinicalMessage)), key=lambda e: e.ts)
    errors = [i for i in items if isinstance(i, ParseError)]
    step = file_engine(detectors, "hl7", {"clinical"}, prepared={"hl7": det}).scan(events)
    alerts = step.alerts
    types: dict[str, int] = {}
    for e in events:
        types[e.message_type] = types.get(e.message_type, 0) + 1
    malformed = sum(1 for e in events if e.fields.get("errors"))
    console.print(
        f"{len(events)} messages ({', '.join(f'{k} {v}' for k, v in sorted(types.items()))}); "
        f"{malformed} malformed; {len(errors)} parse errors; {len(alerts)} alerts",
        highlight=False,
    )
    _print_errors(errors)
    report_failures(step.failures)
    _print_alerts(alerts, as_json)
    if store:
        _save(db, events, alerts)


def listen_hl7(
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0 = any free port).")] = 2575,
    mode: Annotated[str, typer.Option("--mode", help="tap (acknowledge here) or proxy (forward).")] = "tap",
    upstream: Annotated[
        str | None, typer.Option("--upstream", help="Interface engine HOST:PORT for --mode proxy.")
    ] = None,
    block_at: Annotated[
        str | None,
        typer.Option("--block-at", help="Proxy: refuse (AR) messages with alerts of this severity+."),
    ] = None,
    no_ack: Annotated[bool, typer.Option("--no-ack", help="Tap: stay silent (mirrored feed).")] = False,
    max_size: Annotated[int, typer.Option("--max-size", help="Largest message accepted, bytes.")] = 1_048_576,
    idle_timeout: Annotated[
        float, typer.Option("--idle-timeout", help="Drop a peer silent this many seconds (mid-message too).")
    ] = 300.0,
    baseline: BaselineOption = None,
    load_baseline: LoadOption = None,
    db: DbOption = None,
    store: StoreOption = True,
    duration: DurationOption = None,
    status_every: EveryOption = 5.0,
) -> None:
    """Run an MLLP listener in the foreground with live counts: a tap that acknowledges (AA, or AE/AR for
    malformed input) or an inline proxy in front of an interface engine. Messages go to the service's
    ingestion: the engine (or, with bus = "nats", the workers) detects them."""
    from healthsec.commands.live_ingest import LiveIngest
    from healthsec.detect.clinical.hl7 import HL7Detector
    from healthsec.ingest.hl7 import HL7Listener

    if mode not in ("tap", "proxy"):
        raise fail("--mode must be tap or proxy")
    listen_mode: Literal["tap", "proxy"] = "proxy" if mode == "proxy" else "tap"
    up: tuple[str, int] | None = None
    if mode == "proxy":
        if not upstream or ":" not in upstream:
            raise fail("--mode proxy needs --upstream HOST:PORT")
        h, _, p = upstream.rpartition(":")
        if not p.isdigit():
            raise fail(f"--upstream {upstream!r}: port must be a number")
        up = (h, int(p))
    try:
        block = Severity.parse(block_at) if block_at else None
    except KeyError:
        raise fail(f"--block-at {block_at!r}: use info, low, medium, high or critical") from None
    det: HL7Detector | None = None
    if block is not None:  # the proxy's inline policy must answer before forwarding: its own detector
        found = _hl7_detector(baseline, load_baseline, None)
        assert isinstance(found, HL7Detector)
        det = found
        det.max_size = max_size
    elif baseline or load_baseline:
        raise fail(
            "--baseline/--load-baseline set the proxy's --block-at policy; the engine behind the listener "
            "learns its own baseline (learning_hours)"
        )
    ingest = LiveIngest(db, keep=store)

    async def run() -> None:
        await ingest.start()
        on_event, on_error = ingest.attach("hl7")

        def error(e: ParseError) -> None:
            on_error(e)
            console.print(f"[yellow]input error[/] {e.describe()}", highlight=False)

        listener = HL7Listener(
            host=host,
            port=port,
            mode=listen_mode,
            upstream=up,
            detectors=[det] if det is not None else [],
            block_at=block,
            send_acks=not no_ack,
            idle_timeout=idle_timeout,
            max_size=max_size,
            on_event=on_event,
            on_error=error,
        )
        bound = await ingest.bind(listener.start, host, port)
        ingest.begin()
        target = f" -> {up[0]}:{up[1]}" if up else ""
        console.print(
            f"listening for MLLP on {host}:{bound} ({mode}{target}); Ctrl-C to stop", highlight=False
        )
        await ingest.run_until_stopped(
            listener.stats.line, listener.stop, _live_alert, duration=duration, every=status_every
        )

    stop_on_sigterm()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    finally:
        ingest.close()


# ---------------------------------------------------------------------------------------------- DICOM
def scan_dicom(
    paths: Annotated[list[Path], typer.Argument(help="DICOM files or folders (any file name).")],
    db: DbOption = None,
    store: StoreOption = True,
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
    detectors: DetectorsOption = None,
) -> None:
    """Inspect DICOM files: executables in the 128-byte preamble (PE/DICOM polyglot, CVE-2019-11687),
    truncated files, lying element lengths, missing file meta. Non-DICOM files are listed as errors."""
    as_json = wants_json(fmt, as_json)
    from healthsec.ingest.dicom import DicomFileSource

    _check_paths(paths)
    engine = file_engine(detectors, "dicom", {"clinical"})
    items = list(DicomFileSource(paths).read())
    events = [i for i in items if isinstance(i, ClinicalMessage)]
    errors = [i for i in items if isinstance(i, ParseError)]
    step = engine.scan(events)
    alerts = step.alerts
    flagged = {e for a in alerts for e in a.evidence}
    console.print(
        f"{len(events)} DICOM files inspected; {len(flagged)} with findings; {len(errors)} not DICOM or "
        f"unreadable; {len(alerts)} alerts",
        highlight=False,
    )
    _print_errors(errors)
    report_failures(step.failures)
    _print_alerts(alerts, as_json)
    if store:
        _save(db, events, alerts)


def listen_dicom(
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0 = any free port).")] = 11112,
    ae_title: Annotated[str, typer.Option("--ae-title", help="This node's AE title.")] = "HEALTHSEC",
    upstream: Annotated[
        str | None, typer.Option("--upstream", help="Proxy to a PACS at HOST:PORT:AETITLE.")
    ] = None,
    move_dest: Annotated[
        list[str] | None,
        typer.Option("--move-dest", help="Known C-MOVE destination AET=HOST:PORT (repeatable)."),
    ] = None,
    db: DbOption = None,
    store: StoreOption = True,
    duration: DurationOption = None,
    status_every: EveryOption = 5.0,
) -> None:
    """Run the DICOM monitoring SCP (or, with --upstream, a proxy in front of a PACS) in the foreground,
    logging associations and C-ECHO/C-STORE/C-FIND/C-MOVE/C-GET with live counts. Events go to the
    service's ingestion: the engine (or, with bus = "nats", the workers) detects them."""
    from healthsec.commands.live_ingest import LiveIngest
    from healthsec.ingest.dicom import DicomMonitor

    up: tuple[str, int, str] | None = None
    if upstream:
        parts = upstream.split(":")
        if len(parts) != 3 or not parts[1].isdigit():
            raise fail(f"--upstream {upstream!r}: expected HOST:PORT:AETITLE")
        up = (parts[0], int(parts[1]), parts[2])
    dests: dict[str, tuple[str, int]] = {}
    for item in move_dest or []:
        aet, _, addr = item.partition("=")
        h, _, p = addr.rpartition(":")
        if not aet or not h or not p.isdigit():
            raise fail(f"--move-dest {item!r}: expected AET=HOST:PORT")
        dests[aet] = (h, int(p))
    ingest = LiveIngest(db, keep=store)

    async def run() -> None:
        await ingest.start()
        on_event, on_error = ingest.attach("dicom")

        def error(e: ParseError) -> None:
            on_error(e)
            console.print(f"[yellow]input error[/] {e.describe()}", highlight=False)

        mon = DicomMonitor(
            host=host,
            port=port,
            ae_title=ae_title,
            upstream=up,
            move_destinations=dests,
            on_event=on_event,
            on_error=error,
        )
        bound = await ingest.bind(mon.start, host, port)
        ingest.begin()
        target = f" -> {up[2]}@{up[0]}:{up[1]}" if up else ""
        console.print(
            f"DICOM {ae_title} listening on {host}:{bound}{target}; Ctrl-C to stop", highlight=False
        )
        await ingest.run_until_stopped(
            mon.stats.line, mon.stop, _live_alert, duration=duration, every=status_every
        )

    stop_on_sigterm()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    finally:
        ingest.close()


def register(app: typer.Typer) -> None:
    del app  # everything here hangs off the shared scan/listen groups
    scan_app.command("hl7")(scan_hl7)
    scan_app.command("dicom")(scan_dicom)
    listen_app.command("hl7")(listen_hl7)
    listen_app.command("dicom")(listen_dicom)
