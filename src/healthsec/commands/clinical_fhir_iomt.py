"""CLI for FHIR access analytics and IoMT telemetry: scan fhir, listen mqtt, train/detect telemetry."""

from __future__ import annotations

import contextlib
import csv
import secrets
from collections.abc import Sequence
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import typer
from rich.console import Console

from healthsec.commands.adapter import FormatOption, JsonOption, wants_json
from healthsec.commands.groups import (
    DbOption,
    DetectorsOption,
    OldInputFormatOption,
    StatusLine,
    console,
    detect_app,
    err_console,
    fail,
    file_engine,
    input_format,
    listen_app,
    report_failures,
    scan_app,
    stop_on_sigterm,
    train_app,
)
from healthsec.commands.models import PromoteOption, RegisterOption, register_trained_cli
from healthsec.config import env_var
from healthsec.model import Alert, DeviceReading, Event, ParseError

if TYPE_CHECKING:
    from healthsec.detect.clinical.telemetry_model import TelemetryClassifier

MQTT_PASSWORD_ENV = "HEALTHSEC_MQTT_PASSWORD"  # noqa: S105 - the name of the variable, not a secret
InputFormatOption = Annotated[
    str | None, typer.Option("--input-format", help="What is read: ton-iot or csv.")
]


def _mask_key() -> bytes:
    """The key for patient pseudonyms in alerts: ``patient_key_file``, else a random one for this run only."""
    from healthsec.config import ConfigError, load_patient_key, load_settings

    try:
        key = load_patient_key(load_settings())
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if key:
        return key
    console.print("[dim]patient_key_file not set: patient pseudonyms are random for this run only[/]")
    return secrets.token_bytes(32)


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(f"unknown time zone {name!r}") from None


def _print_errors(errors: Sequence[ParseError], limit: int = 10, to: Console = console) -> None:
    for err in errors[:limit]:
        to.print(f"[yellow]skipped[/] {err.describe()}", highlight=False)
    if len(errors) > limit:
        to.print(f"[yellow]... and {len(errors) - limit} more parse error(s)[/]")


def _print_alerts(alerts: Sequence[Alert], limit: int = 30, as_json: bool = False) -> None:
    if as_json:  # every alert, one JSON object per line (as `scan hl7 --format json`)
        from healthsec.model.codec import to_dict

        for a in sorted(alerts, key=lambda a: (-a.severity, -a.score)):
            typer.echo(orjson.dumps(to_dict(a)).decode())
        return
    if not alerts:
        console.print("no alerts")
        return
    for a in sorted(alerts, key=lambda a: (-a.severity, -a.score))[:limit]:
        console.print(
            f"[bold]{a.severity.label.upper():<8}[/] {a.score:.2f}  {a.title}  "
            f"[dim]{','.join(a.techniques)}[/]\n         {a.explanation}",
            highlight=False,
            soft_wrap=True,
        )
    if len(alerts) > limit:
        console.print(f"... and {len(alerts) - limit} more alert(s)")


def _store(db: str | None, events: Sequence[Event], alerts: Sequence[Alert]) -> None:
    from healthsec.app import open_store
    from healthsec.store import StoreError

    try:
        store = open_store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None
    try:
        store.events.add_many(events)
        store.alerts.add_many(alerts)
    finally:
        store.close()


# ------------------------------------------------------------------------------------------ scan fhir
def scan_fhir(
    paths: Annotated[
        list[Path],
        typer.Argument(help="AuditEvent files: NDJSON (.ndjson[.gz]) or one resource/Bundle (.json[.gz])."),
    ],
    directory: Annotated[
        list[Path] | None,
        typer.Option(
            "--directory", help="FHIR bundle / bulk-export folder with Patient, Practitioner, Encounter."
        ),
    ] = None,
    baseline: Annotated[
        list[Path] | None,
        typer.Option("--baseline", help="AuditEvent NDJSON of normal activity to learn rates."),
    ] = None,
    vip: Annotated[
        list[str] | None, typer.Option("--vip", help="Patient id to treat as a VIP (repeatable).")
    ] = None,
    tz: Annotated[str, typer.Option("--tz", help="Hospital time zone for working hours.")] = "UTC",
    db: DbOption = None,
    store: Annotated[bool, typer.Option("--store/--no-store", help="Save events and alerts.")] = True,
    detectors: DetectorsOption = None,
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
) -> None:
    """Validate FHIR R4 AuditEvents and detect insider access: no care relationship, VIP and same-surname
    snooping, off-hours bulk reads, mass $export and rate bursts. Patient ids are shown as keyed tokens.
    With --format json, stdout holds only the alerts (JSON lines); the counts go to stderr."""
    as_json = wants_json(fmt, as_json)
    say = err_console if as_json else console  # with JSON on stdout, the counts go to stderr
    from healthsec.config import load_settings
    from healthsec.detect.clinical.access import AccessDetector
    from healthsec.ingest.fhir import AuditEventFileSource, load_directory
    from healthsec.model.care import CareContext

    for p in [*paths, *(directory or []), *(baseline or [])]:
        if not p.exists():
            raise fail(f"{p}: no such file or directory")
    ctx = CareContext()
    if directory:
        found = load_directory(directory)
        ctx = found.context
        say.print(
            f"directory: {len(found.patients)} patients, {len(found.practitioners)} practitioners, "
            f"{found.encounters} encounters, {found.care_teams} care teams"
        )
        _print_errors(found.errors, to=say)
    if vip:
        ctx = ctx.with_vips(vip)
    detector = AccessDetector(
        context=ctx,
        mask_key=_mask_key(),
        local_tz=_zone(tz),
        local_authority=load_settings().patient_id_authority,
    )
    if baseline:
        learn = [e for e in AuditEventFileSource(baseline).read() if not isinstance(e, ParseError)]
        detector.fit(learn)
        say.print(f"baseline: {len(learn)} AuditEvents")
    items = list(AuditEventFileSource(paths).read())
    events: list[Event] = [e for e in items if not isinstance(e, ParseError)]
    errors = [e for e in items if isinstance(e, ParseError)]
    step = file_engine(detectors, "clinical.access", {"access"}, prepared={"clinical.access": detector}).scan(
        events
    )
    alerts = step.alerts
    say.print(f"AuditEvents: {len(events)} accepted, {len(errors)} rejected; alerts: {len(alerts)}")
    _print_errors(errors, to=say)
    report_failures(step.failures)
    _print_alerts(alerts, as_json=as_json)
    if store:
        _store(db, events, alerts)


# ------------------------------------------------------------------------------------------ listen mqtt
def listen_mqtt(
    host: Annotated[str, typer.Option(help="MQTT broker address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="MQTT broker port.")] = 1883,
    topic: Annotated[list[str] | None, typer.Option("--topic", help="Topic filter (repeatable).")] = None,
    max_messages: Annotated[int | None, typer.Option(help="Stop after this many messages.")] = None,
    idle_timeout: Annotated[float | None, typer.Option(help="Stop after this many idle seconds.")] = None,
    username: Annotated[
        str | None, typer.Option(help=f"MQTT user (password from ${MQTT_PASSWORD_ENV}).")
    ] = None,
    db: DbOption = None,
    store: Annotated[
        bool, typer.Option("--store/--no-store", help="Keep readings and alerts (else a scratch database).")
    ] = True,
    status_every: Annotated[float, typer.Option(help="Seconds between status lines.")] = 1.0,
) -> None:
    """Subscribe to IoMT telemetry and hand the readings to the service's ingestion: the engine learns
    each device's baseline over the learning period (learning_hours), then alerts on spoofed, altered,
    implausible or flooding readings (a promoted telemetry model too). Prints live counts; Ctrl-C stops."""
    import asyncio
    import socket

    from healthsec.commands.live_ingest import LiveIngest
    from healthsec.ingest.telemetry import MqttTelemetrySource

    topics = topic or ["healthsec/#"]
    source = MqttTelemetrySource(
        host,
        port,
        topics,
        username=username,
        password=env_var(MQTT_PASSWORD_ENV),
        max_messages=max_messages,
        idle_timeout=idle_timeout,
    )
    try:  # an unreachable broker fails in seconds, before the engine and its rules are loaded
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        raise fail(f"MQTT broker mqtt://{host}:{port}: cannot connect ({exc.strerror or exc})") from None
    ingest = LiveIngest(db, keep=store)
    counts = {"readings": 0, "errors": 0, "alerts": 0}
    unreachable: list[str] = []
    console.print(f"listening on mqtt://{host}:{port} topics {', '.join(topics)}")

    def show(alert: Alert) -> None:
        counts["alerts"] += 1
        console.print(
            f"[bold red]ALERT[/] {alert.severity.label} {alert.title}: {alert.explanation}", highlight=False
        )

    async def run() -> None:
        await ingest.start()
        on_event, on_error = ingest.attach("mqtt")
        ingest.begin()

        def pump() -> None:
            for item in source.read():
                if (
                    isinstance(item, ParseError)
                    and not counts["readings"]
                    and not counts["errors"]
                    and item.record is None
                ):
                    unreachable.append(item.reason)  # no connection or subscription: not a bad record
                    return
                if isinstance(item, ParseError):
                    counts["errors"] += 1
                    on_error(item)
                    console.print(f"[yellow]skipped[/] {item.describe()}", highlight=False)
                elif isinstance(item, DeviceReading):
                    counts["readings"] += 1
                    on_event(item)

        reading = asyncio.ensure_future(asyncio.to_thread(pump))
        status = StatusLine()

        def line() -> str:
            return (
                f"readings {counts['readings']}, parse errors {counts['errors']}, alerts {counts['alerts']}"
            )

        try:
            await ingest.watch(line, status.show, show, duration=None, every=status_every, until=reading)
        finally:
            source.stop()
            with contextlib.suppress(Exception):
                await reading
            await ingest.stop()
            for a in ingest.new_alerts():
                show(a)

    stop_on_sigterm()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    finally:
        ingest.close()
    if unreachable:
        raise fail(f"MQTT broker mqtt://{host}:{port}: {unreachable[0]}")
    console.print(
        f"stopped: readings {counts['readings']}, parse errors {counts['errors']}, alerts {counts['alerts']}"
    )


# ------------------------------------------------------------------------------------------ telemetry models
def _labelled(paths: Sequence[Path], fmt: str) -> tuple[list[DeviceReading], list[str], list[ParseError]]:
    from healthsec.detect.clinical.telemetry_model import class_name
    from healthsec.ingest.telemetry import FORMATS, TelemetryCsvSource

    if fmt not in FORMATS:
        raise fail(f"--input-format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    readings: list[DeviceReading] = []
    classes: list[str] = []
    errors: list[ParseError] = []
    for path in paths:
        if not path.exists():
            raise fail(f"{path}: no such file")
        for row in TelemetryCsvSource(path, fmt).read_labelled():
            if isinstance(row.item, ParseError):
                errors.append(row.item)
            elif row.label is None and row.attack_type is None:
                errors.append(ParseError("telemetry", str(path), "row has no label/type to train on"))
            else:
                readings.append(row.item)
                classes.append(class_name(row.label, row.attack_type))
    return readings, classes, errors


def _load_model(model_dir: Path) -> TelemetryClassifier:
    from healthsec.detect.clinical.telemetry_model import TelemetryClassifier

    types = model_dir / "types.txt"
    try:
        return TelemetryClassifier.from_parts(
            (model_dir / "meta.json").read_text(encoding="utf-8"),
            (model_dir / "model.txt").read_text(encoding="utf-8"),
            types.read_text(encoding="utf-8") if types.is_file() else None,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise fail(f"cannot load model from {model_dir}: {exc}") from None


def train_telemetry(
    paths: Annotated[list[Path], typer.Argument(help="Labelled telemetry CSV files of one device type.")],
    model_dir: Annotated[
        Path | None, typer.Option("--model", help="Model directory to write (model.txt + meta.json).")
    ] = None,
    fmt: InputFormatOption = None,
    old_format: OldInputFormatOption = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    db: DbOption = None,
    register: RegisterOption = True,
    promote: PromoteOption = False,
    out_alias: Annotated[Path | None, typer.Option("--out", hidden=True)] = None,
) -> None:
    """Train the telemetry model (LightGBM on readings and their behaviour over time; never the calendar)."""
    from healthsec.detect.clinical.telemetry_model import TelemetryClassifier

    if model_dir is not None and out_alias is not None and model_dir != out_alias:
        raise fail("--out is an old name of --model: give one of them")
    out = model_dir or out_alias
    if out is None:
        raise fail("--model DIR is required (the directory to write the model to)")
    readings, classes, errors = _labelled(paths, input_format(fmt, old_format, "ton-iot"))
    _print_errors(errors)
    try:
        model = TelemetryClassifier(seed=seed).fit(readings, classes)
    except ValueError as exc:
        raise fail(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.txt").write_text(model.model_text(), encoding="utf-8")
    (out / "meta.json").write_text(model.meta_json(), encoding="utf-8")
    types = model.types_text()
    if types is not None:
        (out / "types.txt").write_text(types, encoding="utf-8")
    counts = ", ".join(f"{c} {n}" for c, n in model.class_counts.items())
    console.print(
        f"trained on {model.rows} unique rows of {len(readings)} (exact duplicates removed): {counts}\n"
        f"features: {', '.join(model.features)} ({model.feature_set}; chosen by time-blocked "
        f"{model.cv_folds}-fold cross-validation on the training rows)\n"
        f"wrote {', '.join(['model.txt', *(['types.txt'] if types else []), 'meta.json'])} in {out}",
        highlight=False,
    )
    register_trained_cli(db, "telemetry", out, paths, register=register, promote=promote)


def detect_telemetry(
    path: Annotated[Path, typer.Argument(help="Telemetry CSV (.csv or .csv.gz).")],
    model_dir: Annotated[
        Path, typer.Option("--model", help="Directory written by `healthsec train telemetry`.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Predictions CSV, one row per input row, in order.")],
    fmt: InputFormatOption = None,
    old_format: OldInputFormatOption = None,
    db: DbOption = None,
    store: Annotated[bool, typer.Option("--store/--no-store", help="Save alerts and their readings.")] = True,
    detectors: DetectorsOption = None,
) -> None:
    """Score telemetry with a trained model: predictions CSV (file, record, score, is_attack, predicted);
    alerts from the engine (the model's flagged readings, plus any other --detectors)."""
    from healthsec.detect.clinical.telemetry_model import FORMAT_VERSION, class_name
    from healthsec.detect.ml.artefact_detectors import ScoredReadings
    from healthsec.ingest.telemetry import FORMATS, TelemetryCsvSource

    fmt = input_format(fmt, old_format, "ton-iot")
    if fmt not in FORMATS:
        raise fail(f"--input-format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if not path.exists():
        raise fail(f"{path}: no such file")
    model = _load_model(model_dir)
    rows = list(TelemetryCsvSource(path, fmt).read_labelled())
    good = [r.item for r in rows if isinstance(r.item, DeviceReading)]
    if not good:
        raise fail(f"no {fmt} reading could be read from {path} ({len(rows)} record(s) skipped)")
    present = {name for g in good for name in g.metrics}
    if good and not present & set(model.features):
        raise fail(
            f"{path} has columns {', '.join(sorted(present))} but the model was trained on "
            f"{', '.join(model.features)}: train a model for this device type"
        )
    missing = sorted(set(model.features) - present)
    if missing:
        console.print(
            f"[yellow]warning:[/] {path} lacks model feature(s) {', '.join(missing)}; scored as missing"
        )
    pred = model.predict(good)
    k = 0
    truth: list[tuple[int, int]] = []
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        # Same leading columns as `healthsec detect flows`: file, record (the input line), score, ...
        writer.writerow(["file", "record", "score", "is_attack", "predicted", "label", "error"])
        for r in rows:
            line = (
                r.item.provenance.record if isinstance(r.item, DeviceReading) and r.item.provenance else None
            )
            if isinstance(r.item, ParseError):
                writer.writerow([path.name, r.item.record or "", "", "", "", "", r.item.reason])
                continue
            label = "" if r.label is None and r.attack_type is None else class_name(r.label, r.attack_type)
            writer.writerow(
                [
                    path.name,
                    line,
                    f"{pred.score[k]:.6f}",
                    int(pred.is_attack[k]),
                    pred.predicted[k],
                    label,
                    "",
                ]
            )
            if label:
                truth.append((0 if label == "benign" else 1, int(pred.is_attack[k])))
            k += 1
    errors = [r.item for r in rows if isinstance(r.item, ParseError)]
    console.print(
        f"{len(rows)} rows: {len(good)} scored, {len(errors)} rejected; "
        f"{int(pred.is_attack.sum())} predicted attack; wrote {out}",
        highlight=False,
    )
    _print_errors(errors)
    if truth:
        tp = sum(1 for t, p in truth if t and p)
        fn = sum(1 for t, p in truth if t and not p)
        fp = sum(1 for t, p in truth if not t and p)
        tn = sum(1 for t, p in truth if not t and not p)
        console.print(
            f"against the file's labels: accuracy {(tp + tn) / len(truth):.3f}, attack recall "
            f"{tp / (tp + fn) if tp + fn else float('nan'):.3f}, false-positive rate "
            f"{fp / (fp + tn) if fp + tn else float('nan'):.3f}"
        )
    if store:
        scored = ScoredReadings(good, pred, str(FORMAT_VERSION))
        engine = file_engine(detectors, scored.name, {"reading"}, prepared={scored.name: scored})
        step = engine.scan(good)
        report_failures(step.failures)
        alerts = step.alerts
        flagged = {e for a in alerts for e in a.evidence}
        _store(db, [g for g in good if g.id in flagged], alerts)
        console.print(f"stored {len(alerts)} alert(s)")


def register(app: typer.Typer) -> None:
    del app  # everything here hangs off the shared groups
    scan_app.command("fhir")(scan_fhir)
    listen_app.command("mqtt")(listen_mqtt)
    train_app.command("telemetry")(train_telemetry)
    detect_app.command("telemetry")(detect_telemetry)
