"""``healthsec train flows|devices``, ``detect flows`` and ``identify``: network AI on files and captures."""

from __future__ import annotations

import csv
import os
import platform
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from healthsec.commands.groups import (
    DbOption,
    DetectorsOption,
    OldInputFormatOption,
    detect_app,
    expand_globs,
    file_engine,
    input_format,
    progress,
    report_failures,
    train_app,
)
from healthsec.commands.models import PromoteOption, RegisterOption, register_trained_cli
from healthsec.model import Asset, Criticality, stable_id

InputFormatOption = Annotated[
    str | None,
    typer.Option(
        "--input-format", "-f", help="What is read: nsl-kdd, unsw-nb15, cicflowmeter, zeek, csv or pcap."
    ),
]
ModelOption = Annotated[Path, typer.Option("--model", "-m", help="Model directory.")]
LabelOption = Annotated[
    str | None,
    typer.Option(
        "--label-column",
        help="Label column of a labelled CSV (benign/normal/0 = benign, 1/true = attack, else a category).",
    ),
]
KeepOption = Annotated[
    list[str] | None,
    typer.Option(
        "--keep-column",
        help="Use this column as a feature even though it looks like a label or an identifier (repeatable).",
    ),
]
PathsArg = Annotated[list[Path], typer.Argument(help="Input files.", exists=False)]
FLOW_REQUIRED = ("schema.json", "ensemble.json")
DEVICE_REQUIRED = ("devices.json", "capture_rf.skops")


def _read_tables(
    paths: list[Path], fmt: str, label_column: str | None, keep: list[str] | None = None
) -> tuple[list[Any], list[str]]:
    """Read every file; a file that cannot be read is reported, the others go on."""
    from healthsec.ingest.flows import FlowFormatError, read_table

    tables, problems = [], []
    for p in paths:
        try:
            t = read_table(p, fmt, label_column, keep or ())
        except FlowFormatError as exc:
            problems.append(str(exc))
            continue
        tables.append(t)
        for e in t.errors[:5]:
            problems.append(f"skipped {e.describe()}")
        if len(t.errors) > 5:
            problems.append(f"{p}: {len(t.errors) - 5} more records skipped")
        problems.extend(f"{p}: {n}" for n in t.notes)
    return tables, problems


def _fail(message: str) -> typer.Exit:
    """One unwrapped error line on stderr (file paths stay greppable), exit code 1."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _report(problems: list[str]) -> None:
    for msg in problems:
        typer.echo(f"warning: {msg}", err=True)


def train_flows(
    paths: PathsArg,
    model: ModelOption,
    fmt: InputFormatOption = None,
    old_format: OldInputFormatOption = None,
    label_column: LabelOption = None,
    keep_column: KeepOption = None,
    fpr: Annotated[float, typer.Option(help="Stated false-positive rate on benign validation flows.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of the validation split and models.")] = 0,
    db: DbOption = None,
    register: RegisterOption = True,
    promote: PromoteOption = False,
) -> None:
    """Train the flow ensemble (LightGBM if labelled, Isolation Forest + autoencoder on benign flows)."""
    from healthsec.detect.ml.ensemble import FlowEnsemble
    from healthsec.ingest.flows import training_frame
    from healthsec.ingest.flows.modelfiles import save_model_dir, sha256_of

    fmt = input_format(fmt, old_format)
    if not 0 < fpr < 0.5:
        raise _fail("--fpr must be between 0 and 0.5")
    tables, problems = _read_tables(paths, fmt, label_column, keep_column)
    _report(problems)
    if not tables:
        raise _fail("no readable training data")
    frame, cats, labels = training_frame(tables)
    try:
        ens = FlowEnsemble.train(frame, cats, labels, fpr=fpr, seed=seed)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    counts = Counter(labels) if labels is not None else {"(unlabelled, taken as benign)": frame.height}
    ens.card.update(
        {
            "model": "healthsec flow ensemble",
            "version": ens.version,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "training_data": [
                {
                    "path": str(t.path),
                    "format": fmt,
                    "rows": len(t),
                    "sha256": sha256_of(t.path),
                    "skipped_records": len(t.errors),
                }
                for t in tables
            ],
            "label_column": label_column,
            "label_counts": dict(counts),
            "parts": (["supervised (LightGBM binary + category, both calibrated)"] if ens.supervised else [])
            + ["iforest (benign only)", "autoencoder (MLP 32-8-32, benign only)"],
            "feature_schema": {"numeric": ens.schema.numeric, "categorical": list(ens.schema.categorical)},
            "stated_fpr": fpr,
            "validation": "seeded 20 % stratified sample of the training rows (seed "
            f"{seed}); used for calibration and thresholds",
            "formats": "LightGBM text, skops (trusted types checked), JSON; no pickle",
            "python": platform.python_version(),
        }
    )
    written = save_model_dir(model, ens.to_artifacts())
    typer.echo(
        f"trained on {frame.height:,} flows from {len(tables)} file(s): "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())),
    )
    parts = "+".join((["supervised"] if ens.supervised else []) + list(ens.unsupervised.parts))
    typer.echo(
        f"parts: {parts}; benign validation FPR {ens.card['validation_benign_fpr']:.3f} (stated {fpr})",
    )
    typer.echo(f"model written to {model}/ ({', '.join(p.name for p in written)})")
    register_trained_cli(db, "flows", model, [t.path for t in tables], register=register, promote=promote)


def detect_flows(
    paths: PathsArg,
    model: ModelOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Predictions CSV, one row per input flow.")],
    fmt: InputFormatOption = None,
    old_format: OldInputFormatOption = None,
    label_column: LabelOption = None,
    keep_column: KeepOption = None,
    db: DbOption = None,
    alerts: Annotated[
        bool, typer.Option("--alerts/--no-alerts", help="Store alerts for flagged flows.")
    ] = True,
    online: Annotated[
        bool,
        typer.Option("--online", help="Add the streaming part (Half-Space Trees over flows in file order)."),
    ] = False,
    detectors: DetectorsOption = None,
) -> None:
    """Score flows with a trained model: predictions CSV in input order; alerts from the engine (the
    model's flagged flows, plus any other --detectors) into the store."""
    import numpy as np

    from healthsec.app import open_store
    from healthsec.detect.ml.artefact_detectors import ScoredFlowTable
    from healthsec.detect.ml.ensemble import FlowEnsemble
    from healthsec.detect.ml.features import SchemaError
    from healthsec.detect.ml.unsupervised import UnsafeModelError
    from healthsec.ingest.flows import flows_from_table
    from healthsec.ingest.flows.modelfiles import ModelDirError, load_model_dir

    fmt = input_format(fmt, old_format)
    try:
        ens = FlowEnsemble.from_artifacts(load_model_dir(model, FLOW_REQUIRED))
    except (ModelDirError, UnsafeModelError) as exc:
        raise _fail(str(exc)) from exc
    # The model's own columns are kept whatever their names (a column kept at training is kept here).
    tables, problems = _read_tables(paths, fmt, label_column, [*(keep_column or []), *ens.schema.columns])
    _report(problems)
    store = open_store(db) if alerts else None
    total = flagged = stored = scored_files = 0
    by_pred: Counter[str] = Counter()
    failed = len(paths) - len(tables)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "record", "score", "is_attack", "predicted", "fired", "label"])
        for t in tables:
            try:
                extra = ens.schema.check(t.frame)
                pred = ens.predict(t.frame, online=online)
            except SchemaError as exc:
                typer.echo(f"error: {t.path}: {exc}", err=True)
                failed += 1
                continue
            if extra:
                typer.echo(
                    f"warning: {t.path}: {len(extra)} column(s) the model does not use, ignored: "
                    f"{', '.join(extra[:10])}{' ...' if len(extra) > 10 else ''}",
                    err=True,
                )
            recs = t.record_numbers if t.record_numbers is not None else np.arange(1, len(t) + 1)
            labels = t.labels or [""] * len(t)
            for i in range(len(t)):
                w.writerow(
                    [
                        t.path,
                        int(recs[i]),
                        f"{pred.score[i]:.6f}",
                        int(pred.is_attack[i]),
                        pred.predicted[i],
                        pred.fired[i],
                        labels[i],
                    ]
                )
            fh.flush()  # scored results of this file are on disk before the next file is read
            rows = [int(i) for i in np.flatnonzero(pred.is_attack)]
            total += len(t)
            scored_files += 1
            flagged += len(rows)
            by_pred.update(pred.predicted[i] for i in rows)
            if store is not None and (rows or detectors):
                flows = list(flows_from_table(t))
                scored = ScoredFlowTable(ens, t.frame, pred, [f.id for f in flows])
                step = file_engine(detectors, ens.name, {"flow"}, prepared={ens.name: scored}).scan(flows)
                report_failures(step.failures)
                stored += store.alerts.add_many(step.alerts)
    summary = ", ".join(f"{k} {v:,}" for k, v in by_pred.most_common())
    typer.echo(
        f"scored {total:,} flows from {scored_files} file(s); flagged {flagged:,} ({summary})",
    )
    if store is not None:
        typer.echo(f"{stored:,} new alerts stored")
    typer.echo(f"predictions written to {out}")
    if failed:
        raise _fail(f"{failed} file(s) could not be scored (see above)")


def _read_or_error(path: Path, advance: Callable[[int], None]) -> Any:
    """One capture read, or the error that names it (the caller reports it and goes on)."""
    from healthsec.ingest.flows import FlowFormatError
    from healthsec.ingest.flows.pcap import read_capture

    try:
        return read_capture(path)
    except FlowFormatError as exc:
        return exc
    finally:
        advance(1)


def _device_label(path: Path, root: Path) -> str:
    rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
    return rel.parts[0] if len(rel.parts) > 1 else path.parent.name


def train_devices(
    paths: Annotated[list[Path], typer.Argument(help="Captures (pcap/pcapng, optionally .gz).")],
    model: ModelOption,
    labels: Annotated[
        Path | None, typer.Option(help="CSV with columns file,device (file matched by path end).")
    ] = None,
    db: DbOption = None,
    register: RegisterOption = True,
    promote: PromoteOption = False,
    trial_pattern: Annotated[
        str | None,
        typer.Option(
            help="Regex whose first group in a capture's file name is its trial (e.g. '_(\\d+)\\.pcap'): "
            "the unknown-rule thresholds are then chosen leave-one-trial-out."
        ),
    ] = None,
) -> None:
    """Train passive device identification; device = first folder under the captures' common root."""
    from healthsec.detect.ml.devices import DeviceIdentifier
    from healthsec.ingest.flows import FlowFormatError
    from healthsec.ingest.flows.modelfiles import save_model_dir, sha256_of

    paths = expand_globs(paths)
    mapping: dict[str, str] = {}
    if labels is not None:
        with labels.open(newline="") as fh:
            mapping = {r["file"]: r["device"] for r in csv.DictReader(fh)}
    root = Path(os.path.commonpath([str(p.resolve().parent) for p in paths])) if paths else Path()
    import re

    try:
        trial_re = re.compile(trial_pattern) if trial_pattern else None
    except re.error as exc:
        raise _fail(f"--trial-pattern is not a regular expression: {exc}") from exc
    caps, devs, skipped, trials = [], [], [], []
    with progress("reading captures", total=len(paths)) as advance:
        read = [_read_or_error(p, advance) for p in paths]
    for p, cap in zip(paths, read, strict=True):
        if isinstance(cap, FlowFormatError):
            skipped.append(str(cap))
            continue
        dev = (
            next((d for f, d in mapping.items() if str(p).endswith(f)), None)
            if mapping
            else _device_label(p.resolve(), root)
        )
        if dev is None:
            skipped.append(f"{p}: no device label in {labels}")
            continue
        found = trial_re.search(p.name) if trial_re else None
        if trial_re is not None and (found is None or not found.groups()):
            skipped.append(f"{p}: no trial in the file name (--trial-pattern {trial_pattern!r})")
            continue
        caps.append(cap)
        devs.append(dev)
        trials.append(found.group(1) if found else None)
    _report([f"skipped {s}" for s in skipped])
    if len(set(devs)) < 2:
        raise _fail(f"need captures of at least two devices, found {sorted(set(devs))}")
    ident = DeviceIdentifier().fit(caps, devs, trials if trial_re else None)
    card = {
        "model": "healthsec passive device identification",
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "devices": dict(Counter(devs)),
        "training_captures": [{"path": str(c.name), "sha256": sha256_of(c.name)} for c in caps],
        "skipped_captures": skipped,
        "unknown_rule": {
            "min_confidence": ident.min_confidence,
            "min_overlap": ident.min_overlap,
            "chosen_by": ident.tuning or "defaults (fewer than three devices: no cross-validation)",
        },
        "formats": "skops (trusted types checked), JSON; no pickle",
    }
    save_model_dir(model, ident.to_artifacts(card))
    typer.echo(
        f"trained on {len(caps)} captures of {len(set(devs))} devices "
        f"({', '.join(f'{k} {v}' for k, v in sorted(Counter(devs).items()))}); {len(skipped)} skipped",
    )
    if ident.tuning:
        cv = ident.tuning
        typer.echo(
            f"unknown rule: confidence >= {ident.min_confidence}, overlap >= {ident.min_overlap}; chosen by "
            f"{cv['scheme']} on these captures only (CV: known named {cv['cv_known_accuracy']:.3f}, "
            f"unseen devices unknown {cv['cv_unseen_to_unknown']:.3f})"
        )
    typer.echo(f"model written to {model}/")
    inputs = [Path(c.name) for c in caps]
    register_trained_cli(db, "devices", model, inputs, register=register, promote=promote)


def identify(
    paths: Annotated[list[Path], typer.Argument(help="Captures to identify.")],
    model: ModelOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV: file, device, confidence, flows, reason.")],
    inventory: Annotated[
        bool, typer.Option("--inventory", help="Also record identified devices in the asset inventory.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Name the device type behind each capture; 'unknown' when no known device fits."""
    from healthsec.detect.ml.devices import UNKNOWN, DeviceIdentifier
    from healthsec.detect.ml.unsupervised import UnsafeModelError
    from healthsec.ingest.flows import FlowFormatError
    from healthsec.ingest.flows.modelfiles import ModelDirError, load_model_dir

    paths = expand_globs(paths)
    try:
        ident = DeviceIdentifier.from_artifacts(load_model_dir(model, DEVICE_REQUIRED))
    except (ModelDirError, UnsafeModelError) as exc:
        raise _fail(str(exc)) from exc
    counts: Counter[str] = Counter()
    assets: list[Asset] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "device", "confidence", "flows", "reason", "host"])
        with progress("identifying captures", total=len(paths)) as advance:
            for p in paths:
                cap = _read_or_error(p, advance)
                if isinstance(cap, FlowFormatError):
                    w.writerow([str(p), UNKNOWN, "", 0, f"unreadable: {cap}"])
                    counts["unreadable"] += 1
                    continue
                device, conf, why = ident.identify(cap)
                w.writerow([str(p), device, f"{conf:.3f}", cap.frame.height, why, cap.host or ""])
                if device != UNKNOWN:
                    assets.append(_device_asset(cap, device))
                fh.flush()
                counts[device] += 1
    typer.echo(
        f"identified {len(paths)} capture(s): " + ", ".join(f"{k} {v}" for k, v in counts.most_common()),
    )
    typer.echo(f"written to {out}")
    if inventory:
        from healthsec.app import open_store

        store = open_store(db)
        store.assets.upsert_many(assets)
        typer.echo(f"{len(assets)} identified device(s) recorded in the asset inventory")


def _device_asset(cap: Any, device: str) -> Asset:
    """An inventory entry for an identified device; the address is the capture's busiest client."""
    host = cap.host
    return Asset(
        id=stable_id("asset", "device", host or cap.name, device),
        name=f"{device} ({host})" if host else f"{device} ({Path(cap.name).name})",
        role="medical-device",
        zone="unknown",
        ip=host,
        criticality=Criticality.PATIENT_MONITORING,
        device_type=device,
    )


def register(app: typer.Typer) -> None:
    train_app.command("flows")(train_flows)
    detect_app.command("flows")(detect_flows)
    train_app.command("devices")(train_devices)
    app.command("identify")(identify)
