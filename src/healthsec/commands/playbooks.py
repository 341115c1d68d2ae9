"""``healthsec playbooks list|check|run`` and ``healthsec notify dispatch|list|requeue|clocks``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healthsec.commands.adapter import FormatOption, JsonOption, wants_json
from healthsec.commands.cases import _emit, with_service
from healthsec.commands.groups import DbOption, console, fail

playbooks_app = typer.Typer(
    help="Response playbooks (YAML): list, check, run over incidents.", no_args_is_help=True
)
notify_app = typer.Typer(
    help="Notification outbox: deliver, list, requeue; clock warnings.", no_args_is_help=True
)
DirOption = Annotated[list[Path] | None, typer.Option("--dir", help="Extra playbook folder (repeat).")]


def _books(dirs: list[Path] | None) -> list:  # type: ignore[type-arg]
    from healthsec.config import load_settings
    from healthsec.respond.playbook import PlaybookError, load_all

    try:
        return load_all([*load_settings().playbook_dirs, *(dirs or [])])
    except PlaybookError as exc:
        raise fail(f"playbook refused: {exc}") from None


@playbooks_app.command("list")
def list_books(directory: DirOption = None) -> None:
    """Playbooks that would run (built-in and configured folders)."""
    for b in _books(directory):
        kinds = ", ".join(s.kind for s in b.steps)
        console.print(
            f"[bold]{b.name}[/] v{b.version}: {b.description} ({len(b.steps)} steps: {kinds})",
            highlight=False,
            soft_wrap=True,
        )


@playbooks_app.command("check")
def check(files: Annotated[list[Path], typer.Argument(help="Playbook YAML files.")]) -> None:
    """Validate playbook files; a bad one is reported with file, line and field."""
    from healthsec.respond.playbook import PlaybookError, load_file

    bad = 0
    for f in files:
        try:
            b = load_file(f)
        except PlaybookError as exc:
            console.print(f"[red]refused[/] {exc}", highlight=False, soft_wrap=True)
            bad += 1
            continue
        console.print(f"ok {f}: {b.name} ({len(b.steps)} steps)", highlight=False)
    if bad:
        raise typer.Exit(1)


@playbooks_app.command("run")
def run(
    incident: Annotated[
        list[str] | None, typer.Option("--incident", help="Incident id (repeat; default all).")
    ] = None,
    directory: DirOption = None,
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Run the matching playbooks over incidents; a run already done is not repeated, a failed one resumes."""
    as_json = wants_json(fmt, as_json)
    from healthsec.services.playbooks import PlaybookEngine

    books = _books(directory)

    def go(svc):  # type: ignore[no-untyped-def]
        if incident:
            found = [svc.store.incidents.get(i) for i in incident]
            missing = [i for i, x in zip(incident, found, strict=True) if x is None]
            if missing:
                raise ValueError(f"no incident {', '.join(missing)}")
            incs = [x for x in found if x is not None]
        else:
            incs = svc.store.incidents.list(limit=max(svc.store.incidents.count(), 1))
        from healthsec.config import load_settings
        from healthsec.respond.containment import ContainmentConfig

        engine = PlaybookEngine(svc, books, containment=ContainmentConfig.from_settings(load_settings()))
        runs = engine.on_incidents(incs)
        return [{k: r[k] for k in ("playbook", "subject", "status", "case_id", "error")} for r in runs]

    rows = with_service(db, go)
    if as_json:
        _emit(rows, True)
        return
    for r in rows:
        extra = f" - {r['error']}" if r["error"] else ""
        console.print(
            f"{r['playbook']} on {r['subject']}: {r['status']} (case {r['case_id']}){extra}",
            highlight=False,
            soft_wrap=True,
        )
    if not rows:
        console.print("no playbook matched", highlight=False)


@notify_app.command("dispatch")
def dispatch(db: DbOption = None) -> None:
    """Deliver the notifications and SIEM outputs due now, retrying later ones with backoff."""
    from healthsec.config import load_settings
    from healthsec.respond.notify import senders_from_settings
    from healthsec.services.notify import dispatch as run_dispatch
    from healthsec.services.outputs import senders as output_senders

    settings = load_settings()
    try:
        senders = {**senders_from_settings(settings), **output_senders(settings)}
    except (OSError, ValueError) as exc:
        raise fail(f"notification settings: {exc}") from None
    counts = with_service(
        db, lambda s: run_dispatch(s.store, senders, max_attempts=settings.notify_max_attempts)
    )
    console.print(
        f"sent {counts['sent']}, will retry {counts['retry']}, dead-lettered {counts['dead']}",
        highlight=False,
    )


@notify_app.command("list")
def list_messages(
    status: Annotated[str | None, typer.Option("--status", help="pending, sent or dead.")] = None,
    db: DbOption = None,
) -> None:
    """Messages in the outbox (the dead-letter list with --status dead)."""
    from healthsec.store.cases import cases

    rows = with_service(db, lambda s: cases(s.store).outbox(status))
    _emit(
        [
            {k: m[k] for k in ("id", "channel", "status", "attempts", "next_at", "last_error")}
            | {"event": m["body"]["event"]}
            for m in rows
        ],
        True,
    )


@notify_app.command("requeue")
def requeue(message_id: str, db: DbOption = None) -> None:
    """Give a dead-lettered message another round of attempts."""
    from healthsec.services.notify import requeue as do

    if not with_service(db, lambda s: do(s.store, message_id)):
        raise fail(f"no dead-lettered message {message_id}")
    console.print(f"requeued {message_id}", highlight=False)


@notify_app.command("clocks")
def clocks_tick(db: DbOption = None) -> None:
    """Queue warnings for breach clocks close to expiry and notices for clocks that ran out (run it often)."""
    from healthsec.services.breach import refresh

    counts = with_service(db, refresh)
    console.print(f"warned {counts['warned']}, late {counts['late']}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(playbooks_app, name="playbooks")
    app.add_typer(notify_app, name="notify")
