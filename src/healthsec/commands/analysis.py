"""``healthsec incidents|assets|risk|paths|attack``: incidents, inventory, risk, attack paths, ATT&CK data."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from healthsec.analyze.attack import AttackKB
from healthsec.analyze.paths import DEFAULT_RULES, AttackGraph, AttackPath, ReachRule
from healthsec.analyze.risk import RiskModel
from healthsec.app import open_store
from healthsec.commands.groups import DbOption, console, fail
from healthsec.model.codec import to_dict
from healthsec.store import StoreError

if TYPE_CHECKING:
    from healthsec.store import Store  # annotations only: SQLAlchemy loads when a command runs

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]

incidents_app = typer.Typer(help="Incidents: alerts correlated into one story each.", no_args_is_help=True)
assets_app = typer.Typer(
    help="The asset inventory: import, list, discover from alerts.", no_args_is_help=True
)
attack_app = typer.Typer(help="The pinned ATT&CK knowledge (Enterprise + ICS).", no_args_is_help=True)


def _emit(obj: Any) -> None:
    typer.echo(orjson.dumps(obj, option=orjson.OPT_INDENT_2, default=_default).decode())


def _default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(type(obj).__name__)


def _store(db: str | None) -> Store:
    try:
        return open_store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None


def _kb() -> AttackKB | None:
    from healthsec.ingest.attack_data import AttackDataError, load_attack

    try:
        return load_attack()
    except AttackDataError as exc:
        console.print(f"[yellow]warning:[/] ATT&CK data unavailable ({exc}); names are not resolved")
        return None


def _risk_model(store: Store) -> RiskModel:
    from healthsec.store.vulns import profiles, vulns

    return RiskModel.build(
        store.assets.list(), profiles(store).list(), vulns(store).list(), store.alerts.all()
    )


# ---- incidents ---------------------------------------------------------------------------------
@incidents_app.command("list")
def incidents_list(
    status: Annotated[str | None, typer.Option(help="Only incidents with this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Incidents ranked by risk (patient safety first), with severity, alerts, time span and tactics."""
    store = _store(db)
    items = store.incidents.list(limit=limit, status=status)
    model = _risk_model(store)
    # ranked by what could hurt patients: risk first, then severity
    rows = sorted(
        ((inc, model.incident_risk(inc)) for inc in items),
        key=lambda r: (-r[1].score, -int(r[0].severity), r[0].id),
    )
    store.close()
    if as_json:
        _emit([to_dict(i) | {"risk": r} for i, r in rows])
        return
    if not rows:
        console.print("no incidents (run detection and correlation first, e.g. `healthsec demo`)")
        return
    table = Table(title=f"{len(rows)} incidents")
    table.add_column("id", no_wrap=True)
    for col in ("severity", "risk", "alerts", "first seen", "last seen", "tactics", "title"):
        table.add_column(col, overflow="fold")
    for inc, risk in rows:
        table.add_row(
            inc.id,
            inc.severity.label,
            f"{risk.score:.1f}",
            str(len(inc.alert_ids)),
            inc.first_seen.strftime("%Y-%m-%d %H:%M"),
            inc.last_seen.strftime("%Y-%m-%d %H:%M"),
            " > ".join(inc.tactics),
            inc.title,
        )
    console.print(table)


@incidents_app.command("show")
def incidents_show(
    incident_id: Annotated[str, typer.Argument(help="The incident id (from `healthsec incidents list`).")],
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """One incident: timeline, entities, ATT&CK tactics and techniques, risk and mitigations."""
    store = _store(db)
    inc = store.incidents.get(incident_id)
    if inc is None:
        store.close()
        raise fail(f"no incident {incident_id!r}")
    alerts = sorted(
        (a for aid in inc.alert_ids if (a := store.alerts.get(aid)) is not None), key=lambda a: (a.ts, a.id)
    )
    risk = _risk_model(store).incident_risk(inc)
    store.close()
    kb = _kb()
    techniques = []
    names: dict[str, str] = {}
    covers: Counter[str] = Counter()
    for tid in inc.techniques:
        tech = kb.technique(tid) if kb else None
        techniques.append(
            {"id": tid, "name": tech.name if tech else None, "tactics": tech.tactics if tech else ()}
        )
        if kb and tech:
            for m in kb.mitigations_for(tech.id):
                names[m.id] = m.name
                covers[m.id] += 1
    # mitigations that cover the most of the incident's techniques first
    ranked = sorted(covers, key=lambda m: (-covers[m], m))
    mitigations = {m: names[m] for m in ranked}
    if as_json:
        _emit(
            to_dict(inc)
            | {
                "risk": risk,
                "timeline": [to_dict(a) for a in alerts],
                "technique_names": techniques,
                "mitigations": mitigations,
                "mitigation_coverage": {m: covers[m] for m in ranked},
                "healthcare_groups": kb.healthcare_groups_matching(inc.techniques) if kb else [],
            }
        )
        return
    console.print(f"[bold]{inc.title}[/]  ({inc.id})", highlight=False)
    console.print(
        f"severity {inc.severity.label}, score {inc.score:.2f}, status {inc.status.value}, "
        f"{len(inc.alert_ids)} alerts, {inc.first_seen:%Y-%m-%d %H:%M} .. {inc.last_seen:%Y-%m-%d %H:%M} UTC"
    )
    if inc.summary:
        console.print(inc.summary, highlight=False)
    console.print(
        f"[bold]risk {risk.score:.1f}[/] = likelihood {risk.likelihood:.2f} x impact {risk.impact:.2f}"
    )
    for f in risk.factors:
        console.print(f"  - {f.name}: {f.detail}", highlight=False)
    console.print("[bold]tactics:[/] " + (" > ".join(inc.tactics) or "-"))
    for t in techniques:
        console.print(f"  {t['id']} {t['name'] or '(not in the pinned ATT&CK copy)'}", highlight=False)
    shown = ", ".join(f"{e.kind.value}:{e.value} ({e.role.value})" for e in inc.entities[:12])
    more = f" and {len(inc.entities) - 12} more" if len(inc.entities) > 12 else ""
    console.print(f"[bold]entities:[/] {shown}{more}", highlight=False)
    if kb and (leads := kb.healthcare_groups_matching(inc.techniques)):
        who = ", ".join(f"{name} ({n} of {len(inc.techniques)})" for name, n in leads)
        console.print(f"[bold]healthcare-targeting groups using these techniques:[/] {who}", highlight=False)
    if mitigations:
        top = "; ".join(f"{m} {names[m]} ({covers[m]} techniques)" for m in ranked[:6])
        console.print(f"[bold]ATT&CK mitigations covering most techniques:[/] {top}", highlight=False)
    table = Table(title="timeline")
    for col in ("time (UTC)", "severity", "detector", "tactics", "title", "belongs"):
        table.add_column(col, overflow="fold")
    for a in alerts:
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


@incidents_app.command("correlate")
def incidents_correlate(
    window_hours: Annotated[
        float, typer.Option("--window", help="Hours within which alerts may join.")
    ] = 3.0,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Re-correlate every stored alert into incidents (after `healthsec detect ...` wrote alerts).

    Every alert ends in exactly one incident; incidents that keep their id keep their status.
    """
    from datetime import timedelta

    from healthsec.analyze.attack import enrich_alert
    from healthsec.analyze.correlate import correlate

    store = _store(db)
    kb = _kb()
    alerts = store.alerts.all()
    if kb is not None:
        alerts = [enrich_alert(a, kb) for a in alerts]
    hosts = {a.ip: a.name for a in store.assets.list() if a.ip}
    incidents = correlate(alerts, hosts, window=timedelta(hours=window_hours))
    old = {i.id: i.status for i in store.incidents.list(limit=1_000_000)}
    incidents = [dataclasses.replace(i, status=old.get(i.id, i.status)) for i in incidents]
    store.incidents.replace_all(incidents)
    store.audit.record("cli", "incidents.correlate", None, alerts=len(alerts), incidents=len(incidents))
    store.close()
    assigned = sum(len(i.alert_ids) for i in incidents)
    summary = {"alerts": len(alerts), "incidents": len(incidents), "alerts_in_incidents": assigned}
    if as_json:
        _emit(summary)
    else:
        console.print(
            f"{len(alerts)} alerts correlated into {len(incidents)} incidents ({assigned} alerts assigned)"
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
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Import assets (and CVE findings) in one transaction; any bad row means nothing is written."""
    from healthsec.ingest.inventory import overlay_existing, read_inventory
    from healthsec.store.vulns import import_inventory, profiles

    column_map: dict[str, str] = {}
    for item in map_ or []:
        col, sep, field = item.partition("=")
        if not sep:
            raise fail(f"--map wants COLUMN=FIELD, got {item!r}")
        column_map[col] = field.strip()
    if not file.is_file():
        raise fail(f"{file}: no such file")
    res = read_inventory(file, column_map=column_map, ignore=tuple(ignore or ()), source=source)
    if res.errors:
        if as_json:
            _emit({"imported": False, "errors": [e.describe() for e in res.errors]})
        else:
            for e in res.errors[:50]:
                console.print(f"[red]{e.describe()}[/]", highlight=False)
            if len(res.errors) > 50:
                console.print(f"... and {len(res.errors) - 50} more problems")
        raise fail(f"{len(res.errors)} problem(s) in {file.name}; nothing was imported")
    store = _store(db)
    try:
        res = overlay_existing(res, store.assets.list(), profiles(store).list())
        try:
            import_inventory(store, res.assets, res.profiles, res.vulns)
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise fail(f"the database refused {file.name} ({reason}); nothing was imported") from None
        store.audit.record(
            "cli", "assets.import", str(file.name), assets=len(res.assets), vulns=len(res.vulns)
        )
    finally:
        store.close()
    summary = {
        "imported": True,
        "rows": res.rows,
        "assets": len(res.assets),
        "vulnerabilities": len(res.vulns),
        "ignored_columns": res.ignored,
    }
    if as_json:
        _emit(summary)
    else:
        console.print(
            f"imported {len(res.assets)} assets and {len(res.vulns)} vulnerabilities "
            f"from {res.rows} rows of {file.name}"
        )
        if res.ignored:
            console.print(f"columns not used: {', '.join(res.ignored)}", highlight=False)


@assets_app.command("list")
def assets_list(as_json: JsonOption = False, db: DbOption = None) -> None:
    """The inventory, most critical first."""
    store = _store(db)
    assets = sorted(store.assets.list(), key=lambda a: (-int(a.criticality), a.id))
    store.close()
    if as_json:
        _emit([to_dict(a) for a in assets])
        return
    table = Table(title=f"{len(assets)} assets")
    for col in ("id", "name", "ip", "zone", "role", "criticality", "owner"):
        table.add_column(col, overflow="fold")
    for a in assets:
        table.add_row(a.id, a.name, a.ip or "-", a.zone, a.role, a.criticality.name.lower(), a.owner or "-")
    console.print(table)


@assets_app.command("kev")
def assets_kev(
    file: Annotated[Path, typer.Argument(help="Known-exploited catalogue: CISA KEV JSON, JSON list or CSV.")],
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Flag stored findings whose CVE is in a known-exploited catalogue (e.g. CISA KEV)."""
    from healthsec.ingest.inventory import read_kev
    from healthsec.store.vulns import vulns

    cves, errors = read_kev(file)
    if errors:
        for e in errors[:50]:
            console.print(f"[red]{e.describe()}[/]", highlight=False)
        raise fail(f"{len(errors)} problem(s) in {file.name}; nothing was changed")
    store = _store(db)
    changed = vulns(store).mark_known_exploited(cves)
    store.close()
    if as_json:
        _emit({"catalogue_cves": len(cves), "findings_flagged": changed})
    else:
        console.print(
            f"{len(cves)} CVEs in {file.name}; stored findings newly flagged known exploited: {changed}"
        )


@assets_app.command("show")
def assets_show(
    asset: Annotated[str, typer.Argument(help="Asset id, name or IP.")],
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """One asset: what the inventory says, its vulnerabilities, and its risk with every factor."""
    from healthsec.store.vulns import vulns

    store = _store(db)
    model = _risk_model(store)
    aid = model.asset_for(asset)
    if aid is None:
        store.close()
        raise fail(f"no asset {asset!r} in the inventory")
    found = vulns(store).list(aid)
    store.close()
    a, risk = model.assets[aid], model.asset_risk(aid)
    if as_json:
        _emit(
            {"asset": to_dict(a), "profile": model.profiles.get(aid), "vulnerabilities": found, "risk": risk}
        )
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
    for v in found:
        kev = " KNOWN EXPLOITED" if v.known_exploited else ""
        console.print(
            f"  {v.cve} CVSS {v.cvss_version or '-'} {v.base_score or '-'} {v.cvss_vector or ''}{kev}"
        )


@assets_app.command("discover")
def assets_discover(as_json: JsonOption = False, db: DbOption = None) -> None:
    """Add assets that alerts name but the inventory lacks (zone 'unknown' until placed)."""
    from healthsec.analyze.inventory import discover_from_alerts

    store = _store(db)
    found = discover_from_alerts(store.alerts.all(), store.assets.list())
    store.assets.upsert_many(found)
    store.close()
    if as_json:
        _emit([to_dict(a) for a in found])
    else:
        console.print(f"assets named by alerts but missing from the inventory, now added: {len(found)}")


# ---- risk and paths ----------------------------------------------------------------------------
def risk(
    top: Annotated[int, typer.Option(help="Show the N riskiest assets.")] = 10,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Assets ranked by risk = likelihood x impact (patient safety, PHI, availability), with the reasons."""
    store = _store(db)
    ranked = _risk_model(store).ranking(top)
    store.close()
    if as_json:
        _emit(ranked)
        return
    if not ranked:
        console.print("no assets (import an inventory with `healthsec assets import FILE`)")
        return
    table = Table(title=f"top {len(ranked)} assets by risk")
    for col in ("asset", "criticality", "risk", "likelihood", "impact", "why"):
        table.add_column(col, overflow="fold")
    for r in ranked:
        why = "; ".join(f.detail for f in r.likelihood_factors[:3]) or "no vulnerability, exposure or alert"
        table.add_row(
            r.asset_name, r.criticality, f"{r.score:.1f}", f"{r.likelihood:.2f}", f"{r.impact:.2f}", why
        )
    console.print(table)


def _rules(path: Path | None) -> list[ReachRule]:
    if path is None:
        return list(DEFAULT_RULES)
    try:
        data = orjson.loads(path.read_bytes())
        return [ReachRule(str(r["from"]), str(r["to"]), str(r.get("note", ""))) for r in data]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise fail(f'{path}: rules must be a JSON list of {{"from": ZONE, "to": ZONE}}: {exc}') from None


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
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Most likely attack paths from entry points to clinical assets, and the fixes that cut the most risk."""
    from healthsec.store.vulns import profiles, vulns

    store = _store(db)
    assets = store.assets.list()
    graph = AttackGraph(assets, profiles(store).list(), vulns(store).list(), _rules(rules))
    if from_incident is not None:
        inc = store.incidents.get(from_incident)
        if inc is None:
            store.close()
            raise fail(f"no incident {from_incident!r}")
        by_key = {k.lower(): a.id for a in assets for k in (a.id, a.name, a.ip) if k}
        held = {by_key[e.value.lower()] for e in inc.entities if e.value.lower() in by_key}
        if graph.assume_compromised(held, f"incident {inc.id}") == 0:
            store.close()
            raise fail(f"incident {from_incident!r} names no inventoried asset")
    store.close()
    targets: list[str] | None = None
    if to is not None:
        match = next((a.id for a in assets if to in (a.id, a.name, a.ip)), None)
        if match is None:
            raise fail(f"no asset {to!r} in the inventory")
        targets = [match]
        found: list[AttackPath] = graph.k_paths(match, top)
    else:
        found = graph.best_paths(top=top)
    recs = graph.recommend(fixes, targets, kb=_kb()) if fixes > 0 else []
    if as_json:
        _emit({"paths": found, "fixes": recs})
        return
    if not found:
        console.print("no attack path reaches a critical asset under these rules")
    for i, p in enumerate(found, 1):
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
    if recs:
        table = Table(title="fixes that cut the most path risk (greedy, in order)")
        for col in ("#", "fix", "risk before", "risk after"):
            table.add_column(col, overflow="fold")
        for i, f in enumerate(recs, 1):
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
    as_json: JsonOption = False,
) -> None:
    """Rebuild the pinned ATT&CK copy from local STIX bundles (nothing is downloaded)."""
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
        _emit({"path": str(target), "bytes": size, "domains": sorted(doc["domains"]), **stats})
        return
    console.print(
        f"wrote {target} ({size:,} bytes): domains {', '.join(sorted(doc['domains']))}", highlight=False
    )
    console.print(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in stats.items()), highlight=False)


@attack_app.command("show")
def attack_show(
    key: Annotated[str, typer.Argument(help="Technique (T1486, attack.t1059.001) or tactic (TA0001).")],
    as_json: JsonOption = False,
) -> None:
    """A technique or tactic from the pinned copy, with mitigations and healthcare-targeting groups."""
    kb = _kb()
    if kb is None:
        raise fail("no ATT&CK data")
    tech = kb.technique(key)
    if tech is None:
        tac = kb.tactic(key)
        if tac is None:
            raise fail(f"{key!r} is not a technique or tactic of the pinned ATT&CK copy")
        _emit(tac) if as_json else console.print(
            f"{tac.id} {tac.name} ({tac.domain}), kill-chain rank {tac.rank}"
        )
        return
    mits = kb.mitigations_for(tech.id)
    health = kb.healthcare_groups_using(tech.id)
    if as_json:
        _emit({"technique": tech, "mitigations": mits, "healthcare_groups": health})
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
