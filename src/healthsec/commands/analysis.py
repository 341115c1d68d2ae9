"""``healthsec incidents|assets|risk|paths|attack``: incidents, inventory, risk, attack paths, ATT&CK data."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from healthsec.commands.adapter import CLI_ACTOR, FormatOption, JsonOption, emit, guarded, opened, wants_json
from healthsec.commands.groups import DbOption, console, fail
from healthsec.model import IncidentStatus
from healthsec.model.codec import to_dict
from healthsec.services import assets as asset_use
from healthsec.services import incidents as incident_use
from healthsec.services import risk as risk_use
from healthsec.services.common import Invalid, attack_kb

if TYPE_CHECKING:
    from healthsec.analyze.attack import AttackKB

incidents_app = typer.Typer(help="Incidents: alerts correlated into one story each.", no_args_is_help=True)
assets_app = typer.Typer(
    help="The asset inventory: import, list, discover from alerts.", no_args_is_help=True
)
attack_app = typer.Typer(help="The pinned ATT&CK knowledge (Enterprise + ICS).", no_args_is_help=True)

IncidentArg = Annotated[str, typer.Argument(help="The incident id (from `healthsec incidents list`).")]
ActorOption = Annotated[str, typer.Option(help="Who acts (kept with the change and in the audit log).")]


def _kb() -> AttackKB | None:
    kb, why = attack_kb()
    if kb is None:
        console.print(f"[yellow]warning:[/] {why}; names are not resolved")
    return kb


def _when(ts: object) -> str:
    return f"{ts:%Y-%m-%d %H:%M}"


# ---- incidents ---------------------------------------------------------------------------------
@incidents_app.command("list")
def incidents_list(
    status: Annotated[str | None, typer.Option(help="Only incidents with this status.")] = None,
    assignee: Annotated[
        str | None, typer.Option(help="Only incidents assigned to this analyst ('-': unassigned).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    wide: Annotated[bool, typer.Option("--wide", help="Also show first seen, assignee and tactics.")] = False,
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Incidents ranked by risk (patient safety first), with severity, alerts and last activity."""
    as_json = wants_json(fmt, as_json)
    with opened(db) as store:
        try:
            wanted = IncidentStatus(status) if status else None
        except ValueError:
            raise Invalid(f"--status must be one of {', '.join(s.value for s in IncidentStatus)}") from None
        flt = incident_use.IncidentFilter(status=wanted, assignee=assignee)
        rows = incident_use.list_incidents(store, flt, limit=limit, order="risk").items
    if as_json:
        emit([to_dict(r.incident) | {"risk": r.risk, "assignee": r.assignee} for r in rows])
        return
    if not rows:
        console.print("no incidents (run detection and correlation first, e.g. `healthsec demo`)")
        return
    # 80 columns: the id sits above its title in one cell; cells wrap at spaces and never cut a word
    table = Table(title=f"{len(rows)} incidents", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("incident / title", min_width=30, ratio=1)
    for col in ("severity", "risk", "alerts", "last seen (UTC)"):
        table.add_column(col, no_wrap=True)
    if wide:
        table.add_column("first seen (UTC)", no_wrap=True)
        table.add_column("assignee")
        table.add_column("tactics")
    for r in rows:
        inc = r.incident
        cells = [
            f"{inc.id}\n{inc.title}",
            inc.severity.label,
            f"{r.risk.score:.1f}" if r.risk else "-",
            str(len(inc.alert_ids)),
            _when(inc.last_seen),
        ]
        if wide:
            cells += [_when(inc.first_seen), r.assignee or "-", " > ".join(inc.tactics)]
        table.add_row(*cells, end_section=True)
    console.print(table)


@incidents_app.command("show")
def incidents_show(
    incident_id: IncidentArg,
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """One incident: timeline, entities, ATT&CK tactics and techniques, risk, mitigations and activity."""
    as_json = wants_json(fmt, as_json)
    kb = _kb()
    with opened(db) as store:
        d = incident_use.incident_detail(store, incident_id, kb)
    inc, risk = d.incident, d.risk
    if as_json:
        emit(
            to_dict(inc)
            | {
                "risk": risk,
                "timeline": [to_dict(a) for a in d.alerts],
                "technique_names": d.techniques,
                "mitigations": {m: name for m, name, _ in d.mitigations},
                "mitigation_coverage": {m: n for m, _, n in d.mitigations},
                "healthcare_groups": d.healthcare_groups,
                "assignee": d.assignee,
                "activity": d.activity,
            }
        )
        return
    console.print(f"[bold]{inc.title}[/]  ({inc.id})", highlight=False)
    console.print(
        f"severity {inc.severity.label}, score {inc.score:.2f}, status {inc.status.value}, "
        f"{len(inc.alert_ids)} alerts, {_when(inc.first_seen)} .. {_when(inc.last_seen)} UTC, "
        f"assigned to {d.assignee or 'nobody'}",
        highlight=False,
    )
    if inc.summary:
        console.print(inc.summary, highlight=False)
    console.print(
        f"[bold]risk {risk.score:.1f}[/] = likelihood {risk.likelihood:.2f} x impact {risk.impact:.2f}"
    )
    for f in risk.factors:
        console.print(f"  - {f.name}: {f.detail}", highlight=False)
    console.print("[bold]tactics:[/] " + (" > ".join(inc.tactics) or "-"))
    for t in d.techniques:
        console.print(f"  {t.id} {t.name or '(not in the pinned ATT&CK copy)'}", highlight=False)
    shown = ", ".join(f"{e.kind.value}:{e.value} ({e.role.value})" for e in inc.entities[:12])
    more = f" and {len(inc.entities) - 12} more" if len(inc.entities) > 12 else ""
    console.print(f"[bold]entities:[/] {shown}{more}", highlight=False)
    if d.healthcare_groups:
        who = ", ".join(f"{name} ({n} of {len(inc.techniques)})" for name, n in d.healthcare_groups)
        console.print(f"[bold]healthcare-targeting groups using these techniques:[/] {who}", highlight=False)
    if d.mitigations:
        top = "; ".join(f"{m} {name} ({n} techniques)" for m, name, n in d.mitigations[:6])
        console.print(f"[bold]ATT&CK mitigations covering most techniques:[/] {top}", highlight=False)
    for h in d.activity:
        console.print(f"  {h.ts:%Y-%m-%d %H:%M} {h.actor} {h.kind.value}: {h.value or '-'}", highlight=False)
    table = Table(title="timeline")
    for col in ("time (UTC)", "severity", "detector", "tactics", "title", "belongs"):
        table.add_column(col)
    for a in d.alerts:
        member = inc.membership.get(a.id)
        table.add_row(
            a.ts.strftime("%m-%d %H:%M:%S"),
            a.severity.label,
            a.detector,
            ",".join(a.tactics),
            a.title,
            "-" if member is None else f"{member:.2f}",
        )
    console.print(table)


@incidents_app.command("status")
def incidents_status(
    incident_id: IncidentArg,
    status: Annotated[str, typer.Argument(help="open, investigating, contained, closed or false_positive.")],
    note: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    actor: ActorOption = CLI_ACTOR,
    db: DbOption = None,
) -> None:
    """Move an incident to another status."""
    with opened(db) as store:
        inc = incident_use.set_status(store, incident_id, status, actor=actor, note=note)
    console.print(f"{inc.id} is now {inc.status.value}", highlight=False)


@incidents_app.command("assign")
def incidents_assign(
    incident_id: IncidentArg,
    assignee: Annotated[str, typer.Argument(help="The analyst; '-' takes the incident back.")],
    actor: ActorOption = CLI_ACTOR,
    db: DbOption = None,
) -> None:
    """Give an incident to an analyst."""
    with opened(db) as store:
        entry = incident_use.assign(store, incident_id, None if assignee == "-" else assignee, actor=actor)
    console.print(f"{incident_id} assigned to {entry.value or 'nobody'}", highlight=False)


@incidents_app.command("comment")
def incidents_comment(
    incident_id: IncidentArg,
    text: Annotated[str, typer.Argument(help="The comment.")],
    actor: ActorOption = CLI_ACTOR,
    db: DbOption = None,
) -> None:
    """Add a comment to an incident's history."""
    with opened(db) as store:
        incident_use.comment(store, incident_id, text, actor=actor)
    console.print(f"comment added to {incident_id}", highlight=False)


@incidents_app.command("correlate")
def incidents_correlate(
    window_hours: Annotated[
        float, typer.Option("--window", help="Hours within which alerts may join.")
    ] = 3.0,
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Re-correlate every stored alert into incidents (after `healthsec detect ...` wrote alerts).

    Every alert ends in exactly one incident; incidents that keep their id keep their status.
    """
    as_json = wants_json(fmt, as_json)
    kb = _kb()
    with opened(db) as store:
        s = incident_use.correlate_stored(store, window=timedelta(hours=window_hours), kb=kb, actor=CLI_ACTOR)
    if as_json:
        emit(s)
    else:
        console.print(
            f"{s.alerts} alerts correlated into {s.incidents} incidents "
            f"({s.alerts_in_incidents} alerts assigned)"
        )


# ---- assets ------------------------------------------------------------------------------------
@assets_app.command("import")
def assets_import(
    file: Annotated[Path, typer.Argument(help="Inventory or scanner export (CSV, TSV, JSON, JSON lines).")],
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="COLUMN=FIELD for a column we do not recognise.")
    ] = None,
    ignore: Annotated[list[str] | None, typer.Option(help="A column to skip (repeatable).")] = None,
    source: Annotated[
        str, typer.Option(help="Name of the scanner or inventory, kept on each finding.")
    ] = "inventory",
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Import assets (and CVE findings) in one transaction; any bad row means nothing is written."""
    as_json = wants_json(fmt, as_json)
    with guarded():
        column_map = asset_use.parse_column_map(map_ or [])
    with opened(db) as store:
        try:
            res = asset_use.import_inventory(
                store, file, column_map=column_map, ignore=tuple(ignore or ()), source=source, actor=CLI_ACTOR
            )
        except Invalid as exc:
            if as_json:
                emit({"imported": False, "errors": exc.problems})
                raise fail(str(exc)) from None
            raise
    if as_json:
        emit(
            {
                "imported": True,
                "rows": res.rows,
                "assets": res.assets,
                "vulnerabilities": res.vulnerabilities,
                "ignored_columns": res.ignored_columns,
            }
        )
        return
    console.print(
        f"imported {res.assets} assets and {res.vulnerabilities} vulnerabilities "
        f"from {res.rows} rows of {res.file}"
    )
    if res.ignored_columns:
        console.print(f"columns not used: {', '.join(res.ignored_columns)}", highlight=False)


@assets_app.command("list")
def assets_list(fmt: FormatOption = "table", as_json: JsonOption = False, db: DbOption = None) -> None:
    """The inventory, most critical first."""
    as_json = wants_json(fmt, as_json)
    with opened(db) as store:
        assets = asset_use.list_assets(store).items
    if as_json:
        emit([to_dict(a) for a in assets])
        return
    table = Table(title=f"{len(assets)} assets")
    for col in ("id", "name", "ip", "zone", "role", "criticality", "owner"):
        table.add_column(col)
    for a in assets:
        table.add_row(a.id, a.name, a.ip or "-", a.zone, a.role, a.criticality.name.lower(), a.owner or "-")
    console.print(table)


@assets_app.command("kev")
def assets_kev(
    file: Annotated[Path, typer.Argument(help="Known-exploited catalogue: CISA KEV JSON, JSON list or CSV.")],
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Flag stored findings whose CVE is in a known-exploited catalogue (e.g. CISA KEV)."""
    as_json = wants_json(fmt, as_json)
    with opened(db) as store:
        res = asset_use.flag_known_exploited(store, file, actor=CLI_ACTOR)
    if as_json:
        emit(res)
    else:
        console.print(
            f"{res.catalogue_cves} CVEs in {file.name}; stored findings newly flagged known exploited: "
            f"{res.findings_flagged}"
        )


@assets_app.command("show")
def assets_show(
    asset: Annotated[str, typer.Argument(help="Asset id, name or IP.")],
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """One asset: what the inventory says, its vulnerabilities, and its risk with every factor."""
    as_json = wants_json(fmt, as_json)
    with opened(db) as store:
        d = asset_use.asset_detail(store, asset)
    a, risk = d.asset, d.risk
    if as_json:
        emit({"asset": to_dict(a), "profile": d.profile, "vulnerabilities": d.vulnerabilities, "risk": risk})
        return
    console.print(
        f"[bold]{a.name}[/] ({a.id}) {a.ip or '-'} zone {a.zone}, role {a.role}, "
        f"{a.criticality.name.lower()}, owner {a.owner or '-'}",
        highlight=False,
    )
    console.print(risk.explain(), highlight=False)
    for f in (*risk.impact_factors, *risk.likelihood_factors):
        weight = "" if f.weight is None else f" x weight {f.weight}"
        console.print(f"  - {f.name} {f.value}{weight}: {f.detail}", highlight=False)
    for v in d.vulnerabilities:
        kev = " KNOWN EXPLOITED" if v.known_exploited else ""
        console.print(
            f"  {v.cve} CVSS {v.cvss_version or '-'} {v.base_score or '-'} {v.cvss_vector or ''}{kev}"
        )


@assets_app.command("discover")
def assets_discover(fmt: FormatOption = "table", as_json: JsonOption = False, db: DbOption = None) -> None:
    """Add assets that alerts name but the inventory lacks (zone 'unknown' until placed)."""
    as_json = wants_json(fmt, as_json)
    with opened(db) as store:
        found = asset_use.discover_assets(store, actor=CLI_ACTOR)
    if as_json:
        emit([to_dict(a) for a in found])
    else:
        console.print(f"assets named by alerts but missing from the inventory, now added: {len(found)}")


# ---- risk and paths ----------------------------------------------------------------------------
def risk(
    top: Annotated[int, typer.Option(help="Show the N riskiest assets.")] = 10,
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Assets ranked by risk = likelihood x impact (patient safety, PHI, availability), with the reasons."""
    as_json = wants_json(fmt, as_json)
    with opened(db) as store:
        ranked = risk_use.rank_assets(store, top)
    if as_json:
        emit(ranked)
        return
    if not ranked:
        console.print("no assets (import an inventory with `healthsec assets import FILE`)")
        return
    table = Table(title=f"top {len(ranked)} assets by risk")
    for col in ("asset", "criticality", "risk", "likelihood", "impact", "why"):
        table.add_column(col)
    for r in ranked:
        why = "; ".join(f.detail for f in r.likelihood_factors[:3]) or "no vulnerability, exposure or alert"
        table.add_row(
            r.asset_name, r.criticality, f"{r.score:.1f}", f"{r.likelihood:.2f}", f"{r.impact:.2f}", why
        )
    console.print(table)


def paths(
    to: Annotated[
        str | None, typer.Option("--to", help="Asset id, name or IP to reach (else all critical).")
    ] = None,
    top: Annotated[int, typer.Option("--top", help="How many paths (K).")] = 5,
    fixes: Annotated[int, typer.Option(help="How many recommended fixes.")] = 5,
    rules: Annotated[
        Path | None, typer.Option(help="Zone reachability rules (JSON list of from/to).")
    ] = None,
    from_incident: Annotated[
        str | None, typer.Option("--from-incident", help="Start from the assets this incident holds.")
    ] = None,
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Most likely attack paths from entry points to clinical assets, and the fixes that cut the most risk."""
    as_json = wants_json(fmt, as_json)
    with guarded():
        reach = risk_use.read_rules(rules) if rules is not None else None
    kb = _kb() if fixes > 0 else None
    with opened(db) as store:
        res = risk_use.attack_paths(
            store, to=to, top=top, fixes=fixes, rules=reach, from_incident=from_incident, kb=kb
        )
    if as_json:
        emit({"paths": res.paths, "fixes": res.fixes})
        return
    if not res.paths:
        console.print("no attack path reaches a critical asset under these rules")
    for i, p in enumerate(res.paths, 1):
        console.print(
            f"[bold]{i}. {p.target_name}[/] likelihood {p.likelihood:.3f} x impact {p.impact:.2f}"
            f" = {p.risk:.3f}",
            highlight=False,
        )
        for s in p.steps[1:]:
            if s.node.startswith("zone:"):
                console.print(f"     -> {s.label}", highlight=False)
            else:
                tech = f" [{s.technique}]" if s.technique else ""
                console.print(f"     -> {s.label} p={s.probability:.2f}{tech}", highlight=False)
    if res.fixes:
        table = Table(title="fixes that cut the most path risk (greedy, in order)")
        for col in ("#", "fix", "risk before", "risk after"):
            table.add_column(col)
        for i, f in enumerate(res.fixes, 1):
            table.add_row(str(i), f.description, f"{f.risk_before:.4f}", f"{f.risk_after:.4f}")
        console.print(table)


# ---- ATT&CK ------------------------------------------------------------------------------------
@attack_app.command("update")
def attack_update(
    files: Annotated[
        list[Path], typer.Argument(help="ATT&CK STIX bundle(s): Enterprise and/or ICS (.json/.gz).")
    ],
    misp: Annotated[
        Path | None,
        typer.Option(help="MISP galaxy threat-actor cluster, for the healthcare-targeting groups."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Where to write (default: the user copy).")] = None,
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
) -> None:
    """Rebuild the pinned ATT&CK copy from local STIX bundles (nothing is downloaded)."""
    as_json = wants_json(fmt, as_json)
    from healthsec.analyze.attack import AttackKB
    from healthsec.ingest.attack_data import (
        AttackDataError,
        load_document,
        save_document,
        update_document,
        user_copy,
    )

    target = out or user_copy()
    try:
        current = load_document() if len(files) < 2 else None
        doc = update_document(current, files, misp)
        size = save_document(doc, target)
    except AttackDataError as exc:
        raise fail(str(exc)) from None
    stats = AttackKB(doc).stats()
    if as_json:
        emit({"path": str(target), "bytes": size, "domains": sorted(doc["domains"]), **stats})
        return
    console.print(
        f"wrote {target} ({size:,} bytes): domains {', '.join(sorted(doc['domains']))}", highlight=False
    )
    console.print(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in stats.items()), highlight=False)


@attack_app.command("show")
def attack_show(
    key: Annotated[str, typer.Argument(help="Technique (T1486, attack.t1059.001) or tactic (TA0001).")],
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
) -> None:
    """A technique or tactic from the pinned copy, with mitigations and healthcare-targeting groups."""
    as_json = wants_json(fmt, as_json)
    kb = _kb()
    if kb is None:
        raise fail("no ATT&CK data")
    tech = kb.technique(key)
    if tech is None:
        tac = kb.tactic(key)
        if tac is None:
            raise fail(f"{key!r} is not a technique or tactic of the pinned ATT&CK copy")
        emit(tac) if as_json else console.print(
            f"{tac.id} {tac.name} ({tac.domain}), kill-chain rank {tac.rank}"
        )
        return
    mits = kb.mitigations_for(tech.id)
    health = kb.healthcare_groups_using(tech.id)
    if as_json:
        emit({"technique": tech, "mitigations": mits, "healthcare_groups": health})
        return
    console.print(
        f"[bold]{tech.id} {tech.name}[/] ({tech.domain}; tactics {', '.join(tech.tactics)})", highlight=False
    )
    console.print(tech.description, highlight=False)
    for m in mits:
        console.print(f"  mitigation {m.id} {m.name}", highlight=False)
    console.print("data components: " + (", ".join(tech.data_components) or "-"), highlight=False)
    console.print("healthcare-targeting groups using it: " + (", ".join(health) or "-"), highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(incidents_app, name="incidents")
    app.add_typer(assets_app, name="assets")
    app.add_typer(attack_app, name="attack")
    app.command("risk")(risk)
    app.command("paths")(paths)
