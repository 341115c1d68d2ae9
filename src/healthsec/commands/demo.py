"""``healthsec demo``: a simulated hospital day, attacked, detected, analysed and reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from healthsec.app import open_store
from healthsec.commands.groups import DbOption, console, err_console, fail, progress
from healthsec.model.codec import to_dict
from healthsec.respond.report import render_report
from healthsec.store import StoreError


def demo(
    seed: Annotated[int, typer.Option(help="Seed of the simulated hospital and its attacks.")] = 7,
    out: Annotated[Path, typer.Option(help="Folder for summary.json, alerts.jsonl and report.html.")] = Path(
        "healthsec-demo"
    ),
    db: DbOption = None,
    campaign: Annotated[
        list[str] | None,
        typer.Option("--campaign", help="Inject only these campaigns (repeatable; default: all five)."),
    ] = None,
) -> None:
    """Simulate a hospital day with five attack campaigns, run the whole pipeline and report."""
    from healthsec.demo import run_demo
    from healthsec.sim import CAMPAIGNS

    unknown = sorted(set(campaign or ()) - set(CAMPAIGNS))
    if unknown:
        raise fail(f"unknown campaign(s) {', '.join(unknown)}; known: {', '.join(CAMPAIGNS)}")
    from healthsec.config import load_settings
    from healthsec.pipeline import default_sigma_paths

    settings = load_settings()
    if settings.sigma_rules is None and not default_sigma_paths(settings):
        # the figures in the README need the SigmaHQ set; without it the host logs meet built-in rules only
        err_console.print(
            "[yellow]note:[/] no SigmaHQ rules found (shared_data is "
            f"{settings.shared_data or 'not set and ../shared/data is not beside this directory'}): "
            "host logs are checked by the built-in rules only; set HEALTHSEC_SHARED_DATA",
            highlight=False,
        )
    try:
        store = open_store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    with progress("simulating, learning the baseline and detecting") as advance:
        run = run_demo(
            seed, store, campaigns=campaign, progress=advance, on_total=lambda n: advance(0, total=n)
        )
    summary = run.summary()
    alerts = sorted(run.result.alerts.values(), key=lambda a: (a.ts, a.id))
    incident_of = {aid: inc.id for inc in run.result.incidents for aid in inc.alert_ids}
    with (out / "alerts.jsonl").open("wb") as fh:
        for a in alerts:
            row = to_dict(a)
            row["incident_id"] = incident_of.get(a.id)
            fh.write(orjson.dumps(row) + b"\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "report.html").write_text(render_report(summary, run.result.incidents, alerts), encoding="utf-8")
    store.close()

    table = Table(title=f"Campaigns injected into the simulated hospital (seed {seed})")
    for col in ("campaign", "detected", "alerts", "events cited", "first alert after"):
        table.add_column(col)
    for c in summary["campaigns"]:
        first = "—" if c["first_alert_seconds"] is None else f"{c['first_alert_seconds']:.0f} s"
        table.add_row(
            c["name"],
            "[green]yes[/]" if c["detected"] else "[red]no[/]",
            str(c["alerts"]),
            f"{100 * (c['event_recall'] or 0):.0f}%",
            first,
        )
    console.print(table)
    inc_table = Table(title="Incidents (correlated alerts), most severe first")
    for col in ("severity", "alerts", "incident", "kill chain"):
        inc_table.add_column(col)
    for inc in run.result.incidents[:8]:
        inc_table.add_row(inc.severity.label, str(len(inc.alert_ids)), inc.title, " → ".join(inc.tactics))
    console.print(inc_table)
    console.print(
        f"events {summary['events']} · alerts {summary['alerts']} · incidents {summary['incidents']} · "
        f"alert precision {summary['alert_precision']} · alert recall {summary['alert_recall']} · "
        f"false alerts per benign day {summary['false_alerts_per_benign_day']}"
    )
    if summary["new_events_stored"] == 0 and summary["events"]:
        console.print("[dim]this database already held this run: nothing was duplicated[/]")
    console.print(f"wrote {out / 'summary.json'}, {out / 'alerts.jsonl'}, {out / 'report.html'}")
    from healthsec.app import resolve_db

    where = resolve_db(db)  # the embedded default is one file per user, shared by every checkout
    console.print(f"store: {where.split('@')[-1]}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
