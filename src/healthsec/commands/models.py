"""``healthsec models list|show|promote|retire``: trained models as versioned artefacts in the store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from healthsec.commands.adapter import FormatOption
from healthsec.commands.groups import DbOption, console

if TYPE_CHECKING:
    from healthsec.model.artefacts import ModelArtefact
    from healthsec.store import Store

models_app = typer.Typer(
    help="Trained models as versioned artefacts: list, show, promote, retire.", no_args_is_help=True
)

KindArg = Annotated[str, typer.Argument(help="Model kind: flows, flows-federated, devices or telemetry.")]
VersionArg = Annotated[int, typer.Argument(help="Version number (see `healthsec models list`).")]
# Options the `healthsec train ...` commands add (one shared definition).
RegisterOption = Annotated[
    bool,
    typer.Option("--register/--no-register", help="Record the model in the store as a candidate artefact."),
]
PromoteOption = Annotated[
    bool, typer.Option("--promote", help="Promote the registered model at once (workers pick it up).")
]


def fail(message: str) -> typer.Exit:
    """One unwrapped error line on stderr (a refusal must stay one line, whatever the terminal width)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _open(db: str | None) -> Store:
    from healthsec.app import open_store
    from healthsec.store import StoreError

    try:
        return open_store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        raise fail(f"--format must be table or json, not {fmt!r}")


def _metrics_line(a: ModelArtefact) -> str:
    """The two headline figures (all of them: ``models show``)."""
    keys = (("balanced_accuracy", "bal. acc."), ("roc_auc", "AUC"), ("accuracy", "acc."))
    shown = [f"{name} {a.metrics[k]:.3f}" for k, name in keys if k in a.metrics][:2]
    return ", ".join(shown) or "-"


def _json(data: Any) -> None:
    import orjson

    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())


def models_list(
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="candidate, promoted or retired.")] = None,
    db: DbOption = None,
    fmt: FormatOption = "table",
) -> None:
    """List stored model artefacts by kind and version."""
    from rich.table import Table

    from healthsec.services.models import list_models

    _check_format(fmt)
    items = list_models(_open(db), kind=kind, status=status)
    if fmt == "json":
        _json([a.to_dict() for a in items])
        return
    if not items:
        typer.echo("no model artefacts stored (train one with `healthsec train flows|devices|telemetry`)")
        return
    table = Table(box=None)
    table.add_column("id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for name in ("created (UTC)", "features", "metrics"):
        table.add_column(name)
    for a in items:
        table.add_row(
            a.id,
            a.status.value,
            a.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(len(a.features)),
            _metrics_line(a),
        )
    console.print(table)


def models_show(
    ref: Annotated[str, typer.Argument(help="An id (flows-v3), kind:version (flows:3) or a kind.")],
    db: DbOption = None,
    fmt: FormatOption = "table",
) -> None:
    """Show one artefact's metadata: schema, training fingerprint, metrics, libraries, provenance."""
    from healthsec.services.models import show_model
    from healthsec.store.models import ArtefactNotFound

    _check_format(fmt)
    try:
        a = show_model(_open(db), ref)
    except ArtefactNotFound as exc:
        raise fail(str(exc)) from None
    if fmt == "json":
        _json(a.to_dict())
        return
    rows = [
        ("id", a.id),
        ("name", a.name),
        ("status", a.status.value),
        ("created", a.created_at.isoformat(timespec="seconds")),
        ("formats", f"{', '.join(a.formats)} (layout version {a.format_version})"),
        (
            "features",
            f"{len(a.features)}: {', '.join(a.features[:12])}{' ...' if len(a.features) > 12 else ''}",
        ),
        ("features hash", a.features_hash),
        ("training data", a.training_fingerprint),
        ("metrics", ", ".join(f"{k}={v:g}" for k, v in sorted(a.metrics.items())) or "-"),
        ("evaluated on", a.evaluation or "-"),
        ("libraries", ", ".join(f"{k} {v}" for k, v in sorted(a.libraries.items()))),
        ("files", ", ".join(sorted(a.files))),
    ]
    for key, value in rows:
        console.print(f"[bold]{key:>14}[/]  {value}", highlight=False, soft_wrap=True)


def models_promote(kind: KindArg, version: VersionArg, db: DbOption = None) -> None:
    """Put a version in service (it must load); the previously promoted one becomes retired."""
    from healthsec.detect.artefacts_load import ArtefactRefused
    from healthsec.services.models import promote_model
    from healthsec.store.models import ArtefactNotFound

    store = _open(db)
    try:
        promoted = promote_model(store, kind, version)
    except (ArtefactNotFound, ArtefactRefused) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"promoted {promoted.id}; workers load it on their next poll")


def models_retire(kind: KindArg, version: VersionArg, db: DbOption = None) -> None:
    """Take a version out of service (it stays stored and can be promoted again)."""
    from healthsec.services.models import retire_model
    from healthsec.store.models import ArtefactNotFound

    try:
        retired = retire_model(_open(db), kind, version)
    except ArtefactNotFound as exc:
        raise fail(str(exc)) from None
    typer.echo(f"retired {retired.id}")


def register_trained_cli(
    db: str | None,
    kind: str,
    model_dir: Path,
    inputs: Sequence[str | Path],
    *,
    register: bool,
    promote: bool,
    **details: Any,
) -> None:
    """What every ``healthsec train <kind>`` (and ``federate join``) does after writing its model
    directory: record it in the store as a candidate (and promote it with ``--promote``), then print its
    kind and version. ``details``: metrics, evaluation, provenance (see ``register_trained``)."""
    if not register:
        if promote:
            raise fail("--promote needs the model registered (drop --no-register)")
        return
    from healthsec.app import open_store
    from healthsec.detect.artefacts_load import ArtefactRefused
    from healthsec.ingest.flows.modelfiles import ModelDirError
    from healthsec.services.train import register_trained
    from healthsec.store import StoreError

    try:
        stored = register_trained(open_store(db), kind, model_dir, inputs, promote=promote, **details)
    except (ArtefactRefused, ModelDirError, StoreError, ValueError) as exc:
        raise fail(f"model written to {model_dir} but not registered: {exc}") from None
    typer.echo(
        f"registered model {stored.kind} version {stored.version} ({stored.id}, {stored.status.value})"
    )


def register(app: typer.Typer) -> None:
    models_app.command("list")(models_list)
    models_app.command("show")(models_show)
    models_app.command("promote")(models_promote)
    models_app.command("retire")(models_retire)
    app.add_typer(models_app, name="models")
