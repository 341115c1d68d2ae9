"""``healthsec cases ...``: open and work cases, approve containment, breach clocks and drafts, reports."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from healthsec.commands.adapter import FormatOption, JsonOption, wants_json
from healthsec.commands.groups import DbOption, console, fail

cases_app = typer.Typer(
    help="Cases: tasks, observables, containment approvals, breach clocks, drafts.", no_args_is_help=True
)
T = TypeVar("T")

ActorOption = Annotated[str | None, typer.Option("--actor", help="Who does this (default: cli:$USER).")]


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _when(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"{flag} {text!r} is not an ISO 8601 time") from None
    if ts.tzinfo is None:
        raise fail(f"{flag} {text!r} has no time zone offset")
    return ts


def with_service(db: str | None, fn: Callable[[Any], T]) -> T:
    """Open the store, build the case service from the settings, run ``fn``; errors become one line."""
    from healthsec.app import open_store
    from healthsec.config import ConfigError, load_settings
    from healthsec.services.cases import CaseError, CaseService, ResponseConfig
    from healthsec.store import StoreError

    try:
        settings = load_settings()
        store = open_store(db, settings=settings)
    except (StoreError, ConfigError) as exc:
        raise fail(str(exc)) from None
    try:
        return fn(CaseService(store, ResponseConfig.from_settings(settings, store.org)))
    except (CaseError, ValueError) as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()


def _emit(data: Any, as_json: bool, text: str | None = None) -> None:
    import orjson

    if as_json or text is None:
        typer.echo(
            orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str).decode()
        )
    else:
        console.print(text, highlight=False, soft_wrap=True)


@cases_app.command("list")
def list_cases(
    status: Annotated[
        str | None, typer.Option("--status", help="open, investigating, contained, closed.")
    ] = None,
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Cases, newest first."""
    as_json = wants_json(fmt, as_json)
    rows = with_service(db, lambda s: s.list(status=status, limit=1000))
    if as_json:
        _emit(rows, True)
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} cases")
    for col in ("id", "severity", "status", "opened (UTC)", "title"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["id"], r["severity"], r["status"], r["opened_at"][:19], r["title"])
    console.print(table)


@cases_app.command("show")
def show(case_id: str, fmt: FormatOption = "table", as_json: JsonOption = False, db: DbOption = None) -> None:
    """One case: tasks, observables, containment requests, playbook runs, clocks and timeline."""
    as_json = wants_json(fmt, as_json)
    data = with_service(db, lambda s: s.show(case_id))
    if as_json:
        _emit(data, True)
        return
    lines = [f"[bold]{data['id']}[/] {data['title']} - {data['severity']}, {data['status']}"]
    lines += [
        f"  incidents: {', '.join(data['incidents'])}",
        f"  data: {', '.join(data['data_categories']) or '-'}",
    ]
    lines += [
        f"  task {t['id']}: {t['title']} ({t['status']}, owner {t['owner']}, due {t['due']})"
        for t in data["tasks"]
    ]
    lines += [
        f"  containment {c['id']}: {c['action']} {c['target']} - {c['status']}" for c in data["containment"]
    ]
    lines += [
        f"  run {r['playbook']}: {r['status']}" + (f" - {r['error']}" if r["error"] else "")
        for r in data["playbook_runs"]
    ]
    lines += [
        f"  clock {c['regime']}.{c['obligation']}: {c['due'] or 'no fixed deadline'} ({c['state']})"
        for c in data["clocks"]
    ]
    lines += [f"  {t['ts'][:19]} {t['actor']}: {t['action']}" for t in data["timeline"]]
    console.print("\n".join(lines), highlight=False, soft_wrap=True)


@cases_app.command("open")
def open_case(
    incident: Annotated[list[str], typer.Option("--incident", help="Incident id (repeat).")],
    title: Annotated[str | None, typer.Option("--title")] = None,
    category: Annotated[
        list[str] | None,
        typer.Option("--category", help="Data category touched: personal, health, ... (repeat)."),
    ] = None,
    significant: Annotated[
        bool, typer.Option("--significant", help="A significant incident (NIS2).")
    ] = False,
    actor: ActorOption = None,
    db: DbOption = None,
) -> None:
    """Open a case from one or more incidents."""
    cid, _ = with_service(
        db,
        lambda s: s.open(
            incident, _actor(actor), title=title, data_categories=category or (), significant=significant
        ),
    )
    console.print(f"opened case {cid}", highlight=False)


@cases_app.command("add-incident")
def add_incident(case_id: str, incident: list[str], actor: ActorOption = None, db: DbOption = None) -> None:
    """Add incidents to a case."""
    with_service(db, lambda s: s.add_incidents(case_id, incident, _actor(actor)))
    console.print(f"case {case_id}: added {', '.join(incident)}", highlight=False)


@cases_app.command("task")
def task(
    case_id: str,
    title: str,
    owner: Annotated[str | None, typer.Option("--owner")] = None,
    due: Annotated[str | None, typer.Option("--due", help="ISO 8601 with offset.")] = None,
    actor: ActorOption = None,
    db: DbOption = None,
) -> None:
    """Add a task."""
    tid = with_service(
        db, lambda s: s.add_task(case_id, title, _actor(actor), owner=owner, due=_when(due, "--due"))
    )
    console.print(f"task {tid}", highlight=False)


@cases_app.command("task-status")
def task_status(task_id: str, status: str, actor: ActorOption = None, db: DbOption = None) -> None:
    """Set a task open, done or cancelled."""
    with_service(db, lambda s: s.set_task(task_id, status, _actor(actor)))
    console.print(f"task {task_id}: {status}", highlight=False)


@cases_app.command("observable")
def observable(case_id: str, kind: str, value: str, actor: ActorOption = None, db: DbOption = None) -> None:
    """Add an observable (host, account, ip, hash, patient - stored as a keyed pseudonym - ...)."""
    oid = with_service(db, lambda s: s.add_observable(case_id, kind, value, _actor(actor)))
    console.print(f"observable {oid}", highlight=False)


@cases_app.command("comment")
def comment(case_id: str, text: str, actor: ActorOption = None, db: DbOption = None) -> None:
    """Add a comment."""
    with_service(db, lambda s: s.comment(case_id, text, _actor(actor)))
    console.print(f"case {case_id}: comment added", highlight=False)


@cases_app.command("attach")
def attach(case_id: str, name: str, ref: str, actor: ActorOption = None, db: DbOption = None) -> None:
    """Attach evidence by reference (a URL or an evidence-store path; the file is not copied)."""
    with_service(db, lambda s: s.attach(case_id, name, ref, _actor(actor)))
    console.print(f"case {case_id}: attachment {name} added", highlight=False)


@cases_app.command("status")
def status(case_id: str, new_status: str, actor: ActorOption = None, db: DbOption = None) -> None:
    """Set the status (open, investigating, contained); closing needs `cases close`."""
    with_service(db, lambda s: s.set_status(case_id, new_status, _actor(actor)))
    console.print(f"case {case_id}: {new_status}", highlight=False)


@cases_app.command("close")
def close(
    case_id: str,
    resolution: Annotated[str, typer.Option("--resolution", help="How it was resolved.")] = "",
    lessons: Annotated[str, typer.Option("--lessons", help="Lessons learnt.")] = "",
    actor: ActorOption = None,
    db: DbOption = None,
) -> None:
    """Close a case: a resolution and a lessons-learnt note are required."""
    with_service(db, lambda s: s.close(case_id, resolution, lessons, _actor(actor)))
    console.print(f"case {case_id}: closed", highlight=False)


@cases_app.command("approve")
def approve(request_id: str, actor: ActorOption = None, db: DbOption = None) -> None:
    """Approve a containment request: dry-run records the plan; a live adapter (containment_live) runs it."""
    from healthsec.services.containment import decide

    body = with_service(db, lambda s: decide(s, request_id, _actor(actor), approve=True))
    console.print(f"approved {request_id}: {body['result']}", highlight=False, soft_wrap=True)
    for line in body["commands"]:
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    if body.get("execution"):
        console.print(f"  -> {body['execution']['output']}", highlight=False, soft_wrap=True)


@cases_app.command("reject")
def reject(
    request_id: str,
    reason: Annotated[str, typer.Option("--reason", help="Why not.")] = "",
    actor: ActorOption = None,
    db: DbOption = None,
) -> None:
    """Reject a containment request (a reason is required)."""
    from healthsec.services.containment import decide

    with_service(db, lambda s: decide(s, request_id, _actor(actor), approve=False, reason=reason))
    console.print(f"rejected {request_id}", highlight=False)


@cases_app.command("rollback")
def rollback(
    request_id: str,
    reason: Annotated[str, typer.Option("--reason", help="Why it is undone.")] = "",
    actor: ActorOption = None,
    db: DbOption = None,
) -> None:
    """Undo an approved containment (through its live adapter if it ran live); records who and why."""
    from healthsec.services.containment import rollback as undo

    body = with_service(db, lambda s: undo(s, request_id, _actor(actor), reason))
    how = (
        f"undone live through {body['adapter']}"
        if body.get("rollback_execution")
        else "dry-run: a person runs the commands below"
    )
    console.print(f"rolled back {request_id} ({how})", highlight=False)
    for line in body["rollback"]:
        console.print(f"  {line}", highlight=False, soft_wrap=True)


@cases_app.command("aware")
def aware(
    case_id: str,
    at: Annotated[str | None, typer.Option("--at", help="Moment of awareness (default: now).")] = None,
    actor: ActorOption = None,
    db: DbOption = None,
) -> None:
    """Record awareness of a breach and start the GDPR / NIS2 / HIPAA clocks the case calls for."""
    from healthsec.services.breach import start_clocks

    n = with_service(db, lambda s: start_clocks(s, case_id, _actor(actor), _when(at, "--at")))
    console.print(f"case {case_id}: {n} clocks started", highlight=False)


@cases_app.command("clocks")
def clocks(
    case_id: Annotated[str | None, typer.Argument(help="One case (default: every case).")] = None,
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Breach-notification clocks with their deadline (UTC) and state (due, met, late, open)."""
    as_json = wants_json(fmt, as_json)
    from healthsec.services.breach import clock_rows

    rows = with_service(db, lambda s: clock_rows(s, case_id))
    if as_json:
        _emit(rows, True)
        return
    for r in rows:
        console.print(
            f"{r['case']} {r['regime']}.{r['obligation']}: {r['due'] or 'no fixed deadline'} - {r['state']}",
            highlight=False,
        )


@cases_app.command("met")
def met(
    case_id: str,
    obligation: Annotated[str, typer.Argument(help="REGIME.OBLIGATION, e.g. gdpr.authority_notification")],
    at: Annotated[str | None, typer.Option("--at", help="When it was done (default: now).")] = None,
    actor: ActorOption = None,
    db: DbOption = None,
) -> None:
    """Record that an obligation was fulfilled by a person."""
    from healthsec.services.breach import mark_met

    state = with_service(db, lambda s: mark_met(s, case_id, obligation, _actor(actor), _when(at, "--at")))
    console.print(f"case {case_id}: {obligation} {state}", highlight=False)


@cases_app.command("draft")
def draft(
    case_id: str,
    regime: Annotated[str, typer.Option("--regime", help="gdpr, nis2 or hipaa.")],
    out: Annotated[Path, typer.Option("--out", help="File to write: .md or .pdf.")],
    db: DbOption = None,
) -> None:
    """Write a breach-notification draft pre-filled from the case (never sent anywhere)."""
    from healthsec.respond.drafts import render_pdf
    from healthsec.services.breach import draft as make

    text = with_service(db, lambda s: make(s, case_id, regime))
    try:
        if out.suffix.lower() == ".pdf":
            out.write_bytes(render_pdf(text))
        else:
            out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror}") from None
    console.print(
        f"wrote {out} ({regime} draft for case {case_id}; complete and send it yourself)", highlight=False
    )


@cases_app.command("report")
def report(
    out: Annotated[Path, typer.Option("--out", help="Folder for awareness.html and awareness.pdf.")],
    since: Annotated[
        str | None, typer.Option("--since", help="Period start (ISO 8601; default 7 days ago).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Period end (default now).")] = None,
    community: Annotated[
        list[Path] | None,
        typer.Option("--community", help="DP aggregate JSON of the sharing community (repeat)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """The risk-awareness report of this organisation for a period (HTML with inline SVG, and PDF)."""
    from healthsec.services.awareness import write_report

    paths = with_service(
        db, lambda s: write_report(s, out, _when(since, "--since"), _when(until, "--until"), community or [])
    )
    console.print("wrote " + ", ".join(str(p) for p in paths), highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(cases_app, name="cases")
