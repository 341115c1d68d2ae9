"""CLI for host logs and Sigma: ``healthsec detect logs`` and ``healthsec rules list|check|test``."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from healthsec.commands.adapter import FormatOption
from healthsec.commands.groups import (
    DbOption,
    DetectorsOption,
    OldInputFormatOption,
    console,
    detect_app,
    err_console,
    expand_globs,
    fail,
    file_engine,
    input_format,
    report_failures,
)
from healthsec.config import env_var
from healthsec.detect.rules.sigma import RuleSet, SigmaDetector, record_locator, validate_rules
from healthsec.ingest.logs import FORMATS, LogFileSource
from healthsec.ingest.logs.rulefiles import load_rules, rule_texts
from healthsec.model import Alert, LogRecord, ParseError

InputFormatOption = Annotated[
    str | None, typer.Option("--input-format", help=f"What is read: {', '.join(FORMATS)} (default auto).")
]

if TYPE_CHECKING:
    from healthsec.engine import DetectorFailure

RULES_ENV = "HEALTHSEC_SIGMA_RULES"
CHUNK = 50_000  # records per evaluation batch: large batches share the field index across more events

rules_app = typer.Typer(
    help="Sigma rules: list, check (what cannot run, and why), test against a log.", no_args_is_help=True
)

RulesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--rules",
        "-r",
        help=f"Sigma rule file or folder (repeatable; else ${RULES_ENV}, "
        "else the SigmaHQ set in shared_data/sigma-rules).",
    ),
]


def _rule_paths(rules: list[Path] | None) -> list[Path]:
    if rules:
        paths = rules
    elif env_var(RULES_ENV):
        paths = [Path(p) for p in str(env_var(RULES_ENV)).split(os.pathsep) if p]
    else:
        from healthsec.config import load_settings
        from healthsec.pipeline import SIGMA_FOLDERS, default_sigma_paths

        settings = load_settings()
        paths = default_sigma_paths(settings)
        if not paths:
            where = settings.shared_data or "../shared/data (not found from here)"
            raise fail(
                f"no Sigma rules: no sigma-rules/ in {where}; pass --rules DIR, set ${RULES_ENV}, "
                "or set HEALTHSEC_SHARED_DATA to the folder that holds sigma-rules/"
            )
        used = ", ".join(SIGMA_FOLDERS)
        root = paths[0].parent
        console.print(f"rules: SigmaHQ set at {root} ({used})", highlight=False, soft_wrap=True)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise fail(f"rule path(s) not found: {', '.join(missing)}")
    return paths


def _load(rules: list[Path] | None, *, quiet_stdout: bool = False) -> RuleSet:
    """Load the rules and say how many loaded (on stderr when stdout carries JSON)."""
    ruleset = load_rules(_rule_paths(rules))
    errors = sum(1 for p in ruleset.problems if p.kind == "error")
    (err_console if quiet_stdout else console).print(
        f"rules: {ruleset.loaded} loaded, {len(ruleset.problems) - errors} unsupported, {errors} invalid",
        highlight=False,
    )
    return ruleset


def _chunks(paths: Sequence[Path], fmt: str, errors: list[ParseError]) -> Iterator[list[LogRecord]]:
    buf: list[LogRecord] = []
    for path in paths:
        for item in LogFileSource(path, fmt=fmt, name="logs").read():
            if isinstance(item, ParseError):
                errors.append(item)
            elif isinstance(item, LogRecord):
                buf.append(item)
                if len(buf) >= CHUNK:
                    yield buf
                    buf = []
    if buf:
        yield buf


def alert_json(alert: Alert, rec: LogRecord | None) -> dict[str, Any]:
    """One line of ``--out``: the rule, its ATT&CK tags, the record (file#number) and what matched."""
    f = alert.features
    matched = {k.removeprefix("match."): v for k, v in f.items() if k.startswith("match.")}
    return {
        "rule_id": f.get("rule_id"),
        "title": alert.title,
        "level": f.get("level"),
        "techniques": list(alert.techniques),
        "tactics": list(alert.tactics),
        "record": f.get("record") or (record_locator(rec) if rec else None),
        "ts": alert.ts.isoformat(),
        "host": rec.host if rec else None,
        "channel": rec.channel if rec else None,
        "event_id": rec.event_id if rec else None,
        "matched": matched,
        "alert_id": alert.id,
        "entities": [e.key for e in alert.entities],
    }


def detect_logs(
    paths: Annotated[list[Path], typer.Argument(help="Log files or archives (EVTX, JSON, zip, tar.gz).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Write one JSON object per alert here.")],
    rules: RulesOption = None,
    fmt: InputFormatOption = None,
    old_format: OldInputFormatOption = None,
    store: Annotated[bool, typer.Option("--store/--no-store", help="Also save alerts and events.")] = True,
    db: DbOption = None,
    detectors: DetectorsOption = None,
) -> None:
    """Run Sigma rules (or other --detectors) over log files through the engine; alerts go to --out
    (JSON lines) and into the store."""
    fmt = input_format(fmt, old_format, "auto")
    if fmt not in FORMATS:
        raise fail(f"unknown --input-format {fmt!r}; expected one of {', '.join(FORMATS)}")
    paths = expand_globs(paths)
    for p in paths:
        if not p.exists():
            raise fail(f"log file not found: {p}")
    names = detectors or ["sigma"]
    engine = file_engine(names, "sigma", {"log"}, sigma_rules=_load(rules) if "sigma" in names else None)
    errors: list[ParseError] = []
    failures: list[DetectorFailure] = []
    total = 0
    by_rule: Counter[str] = Counter()
    levels: Counter[str] = Counter()
    tactics: Counter[str] = Counter()
    handle = None
    if store:
        from healthsec.app import open_store
        from healthsec.store import StoreError

        try:
            handle = open_store(db)
        except StoreError as exc:
            raise fail(str(exc)) from None
    try:
        with out.open("wb") as fh:
            for chunk in _chunks(paths, fmt, errors):
                total += len(chunk)
                step = engine.scan(chunk)
                failures.extend(step.failures)
                alerts = step.alerts
                by_id = {r.id: r for r in chunk}
                for a in alerts:
                    fh.write(orjson.dumps(alert_json(a, by_id.get(a.evidence[0]))) + b"\n")
                    by_rule[a.title] += 1
                    levels[a.severity.label] += 1
                    tactics.update(a.tactics)
                if handle is not None and alerts:
                    evidence = {e for a in alerts for e in a.evidence}
                    handle.events.add_many(by_id[i] for i in evidence if i in by_id)
                    handle.alerts.add_many(alerts)
    finally:
        if handle is not None:
            handle.close()
    console.print(f"records: {total} read, {len(errors)} parse error(s)", highlight=False)
    for err in errors[:10]:
        console.print(f"[yellow]skipped[/] {err.describe()}", highlight=False, soft_wrap=True)
    if len(errors) > 10:
        console.print(f"[yellow]... and {len(errors) - 10} more parse error(s)[/]")
    report_failures(failures)
    if total == 0:  # a run that read nothing must not look like a clean run to a script
        raise fail(f"no {fmt} record could be read from {', '.join(str(p) for p in paths)}")
    summary = ", ".join(f"{n} {lvl}" for lvl, n in levels.most_common())
    console.print(
        f"alerts: {sum(levels.values())} ({summary or 'none'}) -> {out}", highlight=False, soft_wrap=True
    )
    if tactics:
        shown = ", ".join(f"{t} x{n}" for t, n in sorted(tactics.items()))
        console.print(f"tactics: {shown}", highlight=False, soft_wrap=True)
    for title, n in by_rule.most_common(15):
        console.print(f"  {n:>6}  {title}", highlight=False)


def rules_list(rules: RulesOption = None, fmt: FormatOption = "table") -> None:
    """List the rules that load: id, level, ATT&CK tags, title."""
    from healthsec.commands.adapter import emit, wants_json

    as_json = wants_json(fmt)
    ruleset = _load(rules, quiet_stdout=as_json)
    if as_json:
        emit(
            [
                {
                    "id": r.id,
                    "level": r.level,
                    "techniques": r.techniques,
                    "tactics": r.tactics,
                    "title": r.title,
                }
                for r in sorted(ruleset.rules, key=lambda r: r.title)
            ]
            + [
                {"id": c.id, "level": c.level, "correlation": c.type, "title": c.title}
                for c in ruleset.correlations
            ]
        )
        return
    for r in sorted(ruleset.rules, key=lambda r: r.title):
        tags = ",".join(r.techniques + r.tactics)
        console.print(f"{r.id}  {r.level or '-':<13} {tags:<30} {r.title}", highlight=False, soft_wrap=True)
    for c in ruleset.correlations:
        kind = "correlation:" + c.type
        console.print(f"{c.id}  {c.level or '-':<13} {kind:<30} {c.title}", highlight=False)


def rules_check(
    rules: RulesOption = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when a rule is unsupported too.")] = False,
    validate: Annotated[bool, typer.Option("--validate", help="Also run pySigma's validators.")] = False,
) -> None:
    """Report every rule that cannot be parsed or uses something unsupported, with file and reason."""
    ruleset = _load(rules)
    if validate:
        warnings = validate_rules(rule_texts(_rule_paths(rules)))
        for w in warnings:
            console.print(f"[cyan]warning[/] {w.locator}: {w.reason}", highlight=False, soft_wrap=True)
        console.print(f"validators: {len(warnings)} warning(s)", highlight=False)
    for p in sorted(ruleset.problems, key=lambda p: p.locator):
        label = "[red]invalid[/]" if p.kind == "error" else "[yellow]unsupported[/]"
        console.print(f"{label} {p.locator}: {p.reason}", highlight=False, soft_wrap=True)
    reasons = Counter(p.reason.split(":")[0] for p in ruleset.problems if p.kind == "unsupported")
    for reason, n in reasons.most_common(10):
        console.print(f"  {n:>5}  {reason}", highlight=False)
    if any(p.kind == "error" for p in ruleset.problems) or (strict and ruleset.problems):
        raise typer.Exit(1)


def rules_test(
    rule: Annotated[Path, typer.Argument(help="One Sigma rule file.")],
    logs: Annotated[list[Path], typer.Argument(help="Log files to run it against.")],
    fmt: InputFormatOption = None,
    old_format: OldInputFormatOption = None,
) -> None:
    """Run one rule against log files and print each matching record with the fields that matched."""
    fmt = input_format(fmt, old_format, "auto")
    ruleset = _load([rule])
    for p in ruleset.problems:
        console.print(f"[red]{p.kind}[/] {p.locator}: {p.reason}", highlight=False)
    if not ruleset.rules:
        raise fail("the rule did not load")
    detector = SigmaDetector(ruleset)
    errors: list[ParseError] = []
    matches = total = 0
    for chunk in _chunks(logs, fmt, errors):
        total += len(chunk)
        by_id = {r.id: r for r in chunk}
        for a in detector.detect(chunk):
            matches += 1
            line = alert_json(a, by_id.get(a.evidence[0]))
            console.print(
                f"[bold]match[/] {line['record']}  {line['matched']}", highlight=False, soft_wrap=True
            )
    for err in errors[:10]:
        console.print(f"[yellow]skipped[/] {err.describe()}", highlight=False, soft_wrap=True)
    console.print(f"{matches} match(es) in {total} record(s), {len(errors)} parse error(s)", highlight=False)
    if matches == 0:
        raise typer.Exit(1)


def rules_export(
    target: Annotated[str, typer.Option("--target", "-t", help="splunk, elasticsearch, opensearch, ...")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Write one JSON object per query here.")],
    rules: RulesOption = None,
    failures: Annotated[
        Path | None, typer.Option("--failures", help="Write the rules that did not convert (JSON lines).")
    ] = None,
) -> None:
    """Convert the Sigma set healthsec runs into a SIEM's query language (pySigma backends)."""
    from healthsec.services.rules_export import TARGETS, ExportError, export

    try:
        result = export(target, rule_texts(_rule_paths(rules)))
    except ExportError as exc:
        raise fail(str(exc)) from None
    with out.open("wb") as fh:
        for q in result.queries:
            fh.write(orjson.dumps(q) + b"\n")
    if failures is not None:
        with failures.open("wb") as fh:
            for f in result.failures:
                fh.write(orjson.dumps(f) + b"\n")
    console.print(
        f"{target} ({TARGETS[target][2]}): {len(result.queries)} rules converted, "
        f"{len(result.failures)} not converted -> {out}",
        highlight=False,
        soft_wrap=True,
    )
    reasons = Counter(f["reason"].split(":")[0] for f in result.failures)
    for reason, n in reasons.most_common(8):
        console.print(f"  {n:>6}  {reason}", highlight=False)


def register(app: typer.Typer) -> None:
    detect_app.command("logs")(detect_logs)
    rules_app.command("list")(rules_list)
    rules_app.command("check")(rules_check)
    rules_app.command("test")(rules_test)
    rules_app.command("export")(rules_export)
    app.add_typer(rules_app, name="rules")
