"""``healthsec alerts list|show|triage``: stored alerts, filtered and paged, and the analyst's verdicts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from healthsec.commands.adapter import CLI_ACTOR, FormatOption, emit, opened, wants_json
from healthsec.commands.groups import DbOption, console, fail
from healthsec.model import Severity
from healthsec.model.codec import to_dict

alerts_app = typer.Typer(
    help="Stored alerts: list, show, triage (true or false positive).", no_args_is_help=True
)

When = Annotated[datetime | None, typer.Option(help="UTC time, e.g. 2026-03-01 or 2026-03-01T08:00:00.")]


def _severity(value: str | None) -> Severity | None:
    if value is None:
        return None
    try:
        return Severity.parse(value)
    except (KeyError, ValueError):
        raise fail(
            f"--severity must be one of {', '.join(s.label for s in Severity)}, not {value!r}"
        ) from None


@alerts_app.command("list")
def alerts_list(
    detector: Annotated[str | None, typer.Option(help="Only alerts of this detector.")] = None,
    severity: Annotated[str | None, typer.Option(help="At least this severity: info .. critical.")] = None,
    asset: Annotated[str | None, typer.Option(help="Naming this asset (id, name or IP).")] = None,
    technique: Annotated[
        str | None, typer.Option(help="Supporting this ATT&CK technique (T1059 takes its sub-techniques).")
    ] = None,
    since: When = None,
    until: When = None,
    incident: Annotated[str | None, typer.Option(help="Only alerts of this incident.")] = None,
    verdict: Annotated[str | None, typer.Option(help="true_positive, false_positive or untriaged.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many first.")] = 0,
    wide: Annotated[bool, typer.Option("--wide", help="Also show techniques, verdict and incident.")] = False,
    fmt: FormatOption = "table",
    db: DbOption = None,
) -> None:
    """Stored alerts, oldest first, with filters; the total is counted across every page."""
    from healthsec.services.alerts import AlertFilter, alert_rows

    as_json = wants_json(fmt)
    flt = AlertFilter(
        detector=detector,
        min_severity=_severity(severity),
        asset=asset,
        technique=technique,
        since=since,
        until=until,
        incident_id=incident,
        verdict=verdict,
    )
    with opened(db) as store:
        page = alert_rows(store, flt, limit=limit, offset=offset, with_total=True)
    if as_json:
        items = [to_dict(r.alert) | {"incident_id": r.incident_id, "verdict": r.verdict} for r in page.items]
        emit({"items": items, "total": page.total, "offset": offset, "next_offset": page.next_offset})
        return
    from rich import box
    from rich.table import Table

    shown = (
        f"{offset + 1}-{offset + len(page.items)} of {page.total}" if page.items else f"none of {page.total}"
    )
    # 80 columns: the id sits above its title in one cell; cells wrap at spaces and never cut a word
    table = Table(title=f"alerts {shown}", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("alert / title", min_width=30, ratio=1)
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("detector", max_width=22)
    if wide:
        for col in ("techniques", "verdict", "incident"):
            table.add_column(col)
    for r in page.items:
        a = r.alert
        row = [f"{a.id}\n{a.title}", f"{a.ts:%m-%d %H:%M}", a.severity.label, a.detector]
        if wide:
            row += [" ".join(a.techniques) or "-", r.verdict or "-", r.incident_id or "-"]
        table.add_row(*row, end_section=True)
    console.print(table)
    if page.next_offset is not None:
        console.print(f"more: --offset {page.next_offset}", highlight=False)


@alerts_app.command("show")
def alerts_show(
    alert_id: Annotated[str, typer.Argument(help="The alert id (from `healthsec alerts list`).")],
    fmt: FormatOption = "table",
    db: DbOption = None,
) -> None:
    """One alert: what fired and why, its evidence, entities, ATT&CK techniques, incident and verdicts."""
    from healthsec.services.alerts import get_alert

    as_json = wants_json(fmt)
    with opened(db) as store:
        d = get_alert(store, alert_id)
    a = d.alert
    if as_json:
        emit(to_dict(a) | {"incident_id": d.incident_id, "verdict": d.verdict, "history": d.history})
        return
    console.print(f"[bold]{a.title}[/]  ({a.id})", highlight=False)
    console.print(
        f"{a.ts:%Y-%m-%d %H:%M:%S} UTC, {a.severity.label}, score {a.score:.2f}, "
        f"detector {a.detector} {a.detector_version}, incident {d.incident_id or '-'}",
        highlight=False,
    )
    console.print(f"[bold]why:[/] {a.explanation}", highlight=False)
    console.print(
        "[bold]ATT&CK:[/] "
        + (" ".join(a.techniques) or "-")
        + (f" ({', '.join(a.tactics)})" if a.tactics else ""),
        highlight=False,
    )
    entities = ", ".join(f"{e.kind.value}:{e.value} ({e.role.value})" for e in a.entities) or "-"
    console.print(f"[bold]entities:[/] {entities}", highlight=False)
    console.print(f"[bold]evidence:[/] {len(a.evidence)} events " + " ".join(a.evidence[:5]), highlight=False)
    for name, value in list(a.features.items())[:10]:
        text = str(value)
        console.print(f"  {name} = {text if len(text) <= 100 else text[:99] + '…'}", highlight=False)
    if not d.history:
        console.print("verdict: untriaged (healthsec alerts triage ID --verdict tp|fp)")
    for f in d.history:
        note = f": {f.comment}" if f.comment else ""
        console.print(
            f"verdict {f.verdict.value} by {f.actor} at {f.ts:%Y-%m-%d %H:%M}{note}", highlight=False
        )


@alerts_app.command("triage")
def alerts_triage(
    alert_ids: Annotated[list[str], typer.Argument(help="One or more alert ids.")],
    verdict: Annotated[str, typer.Option(help="true_positive (tp) or false_positive (fp).")],
    comment: Annotated[str | None, typer.Option(help="Why; kept with the verdict.")] = None,
    actor: Annotated[str, typer.Option(help="Who decides (kept with the verdict).")] = CLI_ACTOR,
    db: DbOption = None,
) -> None:
    """Mark alerts true or false positive, all or none; the verdicts are kept as training feedback."""
    from healthsec.services.alerts import triage_alerts

    with opened(db) as store:
        done = triage_alerts(store, alert_ids, verdict, actor=actor, comment=comment)
    noun = "alert" if len(done) == 1 else "alerts"
    console.print(f"{len(done)} {noun} marked {done[0].verdict.value} by {actor}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
