"""Sigma benchmark: native engine vs pySigma's SQLite backend on OTRF; agreement, coverage, noise, speed.

Speed is measured in process CPU time (time.process_time, polars limited to one thread), so the
figure is events per second of one core even when the machine is shared.

Run: python benchmarks/sigma.py [--archives N] [--seed S] [--diff-per-group K]
The differential part is also used by tests/integration/sigma/test_differential.py.
"""

# ruff: noqa: E402 - the path fix below must run before pySigma ('sigma') is imported

from __future__ import annotations

import sys
from pathlib import Path

# This file is named sigma.py: when run as a script its folder would shadow pySigma's 'sigma' package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # one core, as the target is stated

import argparse
import csv
import importlib.util
import random
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection

from healthsec.detect.rules.sigma import CompiledRule, RuleSet, SigmaEngine
from healthsec.detect.rules.sigma.audit import field_value
from healthsec.detect.rules.sigma.compile import KEYWORD_FIELD
from healthsec.detect.rules.sigma.engine import group_key, route_rows
from healthsec.detect.rules.sigma.evaluate import Batch, as_text
from healthsec.detect.rules.sigma.logsource import ANY_WINDOWS
from healthsec.ingest.logs import LogFileSource
from healthsec.ingest.logs.rulefiles import load_rules
from healthsec.model import LogRecord

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SIGMA = DATA / "sigma-rules"
OTRF = DATA / "otrf-security-datasets"
WINDOWS_RULE_DIRS = ("rules/windows", "rules-emerging-threats", "rules-threat-hunting/windows")


def windows_rules(sigma_dir: Path = SIGMA) -> RuleSet:
    """Every SigmaHQ rule with product windows (rules, emerging threats, threat hunting)."""
    dirs = [sigma_dir / d for d in WINDOWS_RULE_DIRS]
    rs = load_rules(dirs)
    ids, paths = windows_index()
    rs.rules = [r for r in rs.rules if r.id in ids]
    rs.problems = [
        p
        for p in rs.problems
        if p.rule_id in ids or p.locator.split(":")[0].removeprefix(str(sigma_dir) + "/") in paths
    ]
    return rs


def windows_index() -> tuple[set[str], set[str]]:
    """Ids and paths of the product-windows rules in rules_index.csv under the folders we load."""
    with (SIGMA / "rules_index.csv").open() as fh:
        rows = [
            r
            for r in csv.DictReader(fh)
            if r["product"] == "windows" and r["path"].startswith(WINDOWS_RULE_DIRS)
        ]
    return {r["id"] for r in rows}, {r["path"] for r in rows}


def windows_rule_count() -> int:
    """Rules with product windows in the index, under the folders we load (placeholders excluded)."""
    return len(windows_index()[1])


def rule_yaml_by_id(rs: RuleSet) -> dict[str, str]:
    return {rid: Path(loc).read_text(encoding="utf-8") for rid, loc in rs.locators.items()}


# ----------------------------------------------------------------------------------------- reference
@dataclass
class Differential:
    """Rule x event decisions of both evaluators."""

    decisions: int = 0
    agree: int = 0
    rules_compared: int = 0
    not_converted: dict[str, str] = field(default_factory=dict)  # rule id -> why the reference cannot run it
    disagreements: Counter[tuple[str, str]] = field(default_factory=Counter)  # (rule id, direction) -> n
    reference_seconds: float = 0.0
    native_seconds: float = 0.0
    examples: dict[tuple[str, str], int] = field(default_factory=dict)  # (rule, direction) -> record index


def _regexp(pattern: str, value: object) -> bool:
    if value is None:
        return False
    try:
        return re.search(pattern, str(value)) is not None
    except re.error:
        return False


def convert_rules(
    rules: Sequence[CompiledRule], texts: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """pySigma SQLite queries per rule id, and the reasons for the rules it cannot convert."""
    backend = sqliteBackend()
    queries: dict[str, str] = {}
    failed: dict[str, str] = {}
    for rule in rules:
        try:
            coll = SigmaCollection.from_yaml(texts[rule.id])
            out = backend.convert(coll)
            if len(out) != 1:
                failed[rule.id] = f"{len(out)} queries"
                continue
            queries[rule.id] = str(out[0])
        except Exception as exc:  # the reference's own limits: recorded, not hidden
            failed[rule.id] = f"{type(exc).__name__}: {str(exc)[:120]}"
    return queries, failed


def differential(
    records: Sequence[LogRecord], rules: Sequence[CompiledRule], texts: dict[str, str], nocase: bool = False
) -> Differential:
    """Run both evaluators over the same records (routed by our logsource mapping, renames applied).

    ``nocase`` declares the reference's columns COLLATE NOCASE, i.e. applies Sigma's rule that plain
    string matches ignore case (SQLite's '=' and IN compare case-sensitively; only LIKE ignores case).
    """
    res = Differential()
    queries, res.not_converted = convert_rules(rules, texts)
    engine = SigmaEngine(rules)
    groups: dict[tuple[str | None, int | None, str | None], list[int]] = {}
    for i, rec in enumerate(records):
        groups.setdefault(group_key(rec), []).append(i)
    compared: set[str] = set()
    for key, idx in groups.items():
        for route, route_rules in engine.routes(key):
            ren = dict(route[0])
            rows = route_rows(records, idx, route[1])
            fields_ = [records[i].fields for i in rows]
            t0 = time.process_time()
            batch = Batch(fields_, ren, engine.plan(key, route, route_rules))
            native = {r.id: batch.node(r.root) for r in route_rules}
            res.native_seconds += time.process_time() - t0
            cols = sorted({f for r in route_rules for f in r.fields if f != KEYWORD_FIELD})
            t0 = time.process_time()
            db = sqlite3.connect(":memory:")
            db.create_function("REGEXP", 2, _regexp, deterministic=True)
            collate = " COLLATE NOCASE" if nocase else ""
            coldefs = ", ".join(f'"{c}" TEXT{collate}' for c in cols)
            db.execute(f"CREATE TABLE logs (_i INTEGER PRIMARY KEY{', ' + coldefs if cols else ''})")
            marks = ", ".join("?" for _ in range(len(cols) + 1))
            db.executemany(
                f"INSERT INTO logs VALUES ({marks})",
                ([j] + [as_text(field_value(f, c, ren)) for c in cols] for j, f in enumerate(fields_)),
            )
            for rule in route_rules:
                q = queries.get(rule.id)
                if q is None:
                    continue
                try:
                    ref = {row[0] for row in db.execute(q.replace("SELECT *", "SELECT _i", 1))}
                except sqlite3.Error as exc:
                    res.not_converted[rule.id] = f"sqlite: {exc}"
                    continue
                compared.add(rule.id)
                mine = native[rule.id]
                for j in range(len(rows)):
                    a, b = bool(mine[j]), j in ref
                    res.decisions += 1
                    if a == b:
                        res.agree += 1
                    else:
                        d = "native-only" if a else "reference-only"
                        res.disagreements[(rule.id, d)] += 1
                        res.examples.setdefault((rule.id, d), rows[j])
            db.close()
            res.reference_seconds += time.process_time() - t0
    res.rules_compared = len(compared)
    return res


# ----------------------------------------------------------------------------------------- data
@dataclass
class Dataset:
    path: Path
    techniques: set[str]
    tactics: set[str]


def otrf_datasets(limit: int | None, seed: int) -> list[Dataset]:
    """Windows host archives with their labelled techniques/tactics (atomic_index.csv), seeded pick."""
    by_file: dict[str, Dataset] = {}
    with (OTRF / "atomic_index.csv").open() as fh:
        for row in csv.DictReader(fh):
            if row["platform"] != "Windows" or row["present"] != "True" or not row["json_records"]:
                continue
            if int(row["json_records"] or 0) == 0:
                continue
            ds = by_file.setdefault(row["file"], Dataset(OTRF / row["file"], set(), set()))
            ds.techniques.update(t for t in row["techniques"].split(";") if t)
            ds.tactics.update(t for t in row["tactics"].split(";") if t)
    items = sorted(by_file.values(), key=lambda d: str(d.path))
    if limit is not None and limit < len(items):
        items = random.Random(seed).sample(items, limit)
    return items


def read_records(path: Path) -> list[LogRecord]:
    return [r for r in LogFileSource(path).read() if isinstance(r, LogRecord)]


# OTRF labels use ATT&CK <= v18, where Defense Evasion (TA0005) still held what v19 split off as
# Defense Impairment (TA0112); an alert tagged TA0112 therefore counts for a TA0005 label.
V19_TACTIC_SPLIT = {"TA0112": "TA0005"}


def technique_hit(alert_techniques: Sequence[str], alert_tactics: Sequence[str], ds: Dataset) -> bool:
    for t in alert_techniques:
        if any(t == x or t.startswith(x + ".") or x.startswith(t + ".") for x in ds.techniques):
            return True
    tactics = set(alert_tactics) | {V19_TACTIC_SPLIT[t] for t in alert_tactics if t in V19_TACTIC_SPLIT}
    return bool(tactics & ds.tactics)


def file_metrics(
    fired: Sequence[set[str]], datasets: Sequence[Dataset], rules: dict[str, CompiledRule]
) -> tuple[float, float]:
    """Share of files with any alert, and with an alert whose own tactic tags hold a labelled tactic."""
    alerted = right = 0
    for ids, ds in zip(fired, datasets, strict=True):
        alerted += bool(ids)
        tactics = {t for rid in ids for t in rules[rid].tactics}
        tactics |= {V19_TACTIC_SPLIT[t] for t in tactics if t in V19_TACTIC_SPLIT}
        right += bool(tactics & ds.tactics)
    n = max(1, len(datasets))
    return alerted / n, right / n


# ----------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--archives", type=int, default=None, help="seeded sample of OTRF archives (default: all)"
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-differential", action="store_true", help="skip the rule x event differential")
    ap.add_argument(
        "--no-baseline", action="store_true", help="skip pySigma's Windows pipelines + SQLite baseline"
    )
    ap.add_argument("--batch", type=int, default=50_000, help="events per evaluation batch")
    ap.add_argument(
        "--diff-per-group",
        type=int,
        default=300,
        help="records per (channel, event id) group in the differential (seeded sample)",
    )
    args = ap.parse_args(argv)
    wall0 = time.time()

    t0 = time.process_time()
    rs = windows_rules()
    load_s = time.process_time() - t0
    total_windows = windows_rule_count()
    print(
        f"SigmaHQ Windows rules (product windows, rules_index.csv): {total_windows}, "
        f"{len(rs.rules)} loaded and run "
        f"({100 * len(rs.rules) / total_windows:.1f} %), {len(rs.problems)} not loaded; load {load_s:.1f}s"
    )
    for reason, n in Counter(p.reason for p in rs.problems).most_common():
        print(f"  not loaded x{n}: {reason}")

    datasets = otrf_datasets(args.archives, args.seed)
    engine = SigmaEngine(rs.rules)
    by_id = {r.id: r for r in rs.rules}
    baseline = None
    if not args.no_baseline:
        try:
            import sigma.pipelines.sysmon
            import sigma.pipelines.windows  # noqa: F401

            spec = importlib.util.spec_from_file_location("sigma_pipelines", _HERE / "sigma_pipelines.py")
            assert spec is not None
            assert spec.loader is not None
            mod = importlib.util.module_from_spec(spec)
            sys.modules["sigma_pipelines"] = mod
            spec.loader.exec_module(mod)
        except ImportError as exc:  # pysigma-pipeline-windows/-sysmon not installed
            print(f"(no pySigma pipeline baseline: {exc})")
        else:
            baseline = mod.PipelineBaseline(rule_yaml_by_id(rs))
            print(
                f"pySigma pipelines baseline: {baseline.converted} rules convert "
                f"(sysmon + windows-audit + windows-logsource pipelines), {len(baseline.failed)} do not"
            )
    mine_files: list[set[str]] = []
    base_files: list[set[str]] = []
    # the same set without rules that search every Windows channel (product: windows alone)
    narrow = [r for r in rs.rules if not any(ANY_WINDOWS in t.channels for t in r.targets)]
    engine_narrow = SigmaEngine(narrow)
    narrow_s = 0.0
    rnd = random.Random(args.seed)
    groups: dict[tuple[str | None, int | None, str | None], list[LogRecord]] = {}
    seen: Counter[tuple[str | None, int | None, str | None]] = Counter()
    n_events = covered = noise_alerts = n_alerts = 0
    read_s = native_s = 0.0
    print(
        f"\nOTRF Windows archives: {len(datasets)}"
        + (f" (seeded sample, seed {args.seed})" if args.archives else " (all with metadata and JSON logs)")
    )
    print(f"evaluated in batches of >= {args.batch} events across archives, as 'healthsec detect logs' does")
    print("per data set: events, alerts, alerts per 1000 events, labelled technique/tactic found")
    pending: list[tuple[Dataset, list[LogRecord]]] = []

    def flush() -> None:
        nonlocal native_s, narrow_s, n_events, n_alerts, covered, noise_alerts
        batch = [r for _, recs in pending for r in recs]
        t0 = time.process_time()
        hits = engine.match(batch, explain=False)
        native_s += time.process_time() - t0
        t0 = time.process_time()
        engine_narrow.match(batch, explain=False)
        narrow_s += time.process_time() - t0
        per_record: dict[int, list[CompiledRule]] = {}
        for h in hits:
            per_record.setdefault(h.index, []).append(h.rule)
        if baseline is not None:
            base_files.extend(baseline.run([recs for _, recs in pending]))
        offset = 0
        for ds, recs in pending:
            rules_hit = [r for i in range(offset, offset + len(recs)) for r in per_record.get(i, [])]
            mine_files.append({r.id for r in rules_hit})
            offset += len(recs)
            n_events += len(recs)
            n_alerts += len(rules_hit)
            found = any(technique_hit(r.techniques, r.tactics, ds) for r in rules_hit)
            covered += found
            noise_alerts += sum(1 for r in rules_hit if not technique_hit(r.techniques, r.tactics, ds))
            rate = 1000 * len(rules_hit) / max(1, len(recs))
            mark = "yes" if found else "no"
            print(f"  {ds.path.name:<66} {len(recs):>7} {len(rules_hit):>6} {rate:>7.2f}  {mark}")
        pending.clear()

    for ds in datasets:
        t0 = time.process_time()
        recs = read_records(ds.path)
        read_s += time.process_time() - t0
        pending.append((ds, recs))
        for r in recs:  # reservoir sample per (channel, event id) group for the differential
            key = group_key(r)
            seen[key] += 1
            bucket = groups.setdefault(key, [])
            if len(bucket) < args.diff_per_group:
                bucket.append(r)
            else:
                j = rnd.randrange(seen[key])
                if j < args.diff_per_group:
                    bucket[j] = r
        if sum(len(x) for _, x in pending) >= args.batch:
            flush()
    if pending:
        flush()
    print(f"events: {n_events}; ingest {n_events / max(1e-9, read_s):,.0f} events/s")
    print(
        f"native engine, full Windows rule set, one core: {n_events / max(1e-9, native_s):,.0f} events/s "
        f"({native_s:.1f}s, {n_alerts} matches)"
    )
    print(
        f"  without the {len(rs.rules) - len(narrow)} rule(s) that search every Windows channel "
        f"(product: windows alone, keywords): {n_events / max(1e-9, narrow_s):,.0f} events/s"
    )
    print(
        f"coverage: {covered}/{len(datasets)} data sets with an alert carrying a labelled technique "
        f"or tactic "
        f"({100 * covered / max(1, len(datasets)):.1f} %)"
    )
    print(
        f"noise: {1000 * noise_alerts / max(1, n_events):.2f} alerts per 1000 events carrying none "
        f"of their data "
        f"set's labels (labels are per data set: an upper bound on false positives); "
        f"all alerts: {1000 * n_alerts / max(1, n_events):.2f} per 1000 events"
    )

    print("\nper file (OTRF labels; a file counts once): files alerted / right ATT&CK tactic")
    print("  (tactic = the rule's own tactic tags, v19 Defense Impairment counted as Defense Evasion)")
    rows = [("healthsec native engine", mine_files)]
    if baseline is not None:
        rows.append(("pySigma Windows pipelines + SQLite", base_files))
    for name, fired in rows:
        alerted, right = file_metrics(fired, datasets, by_id)
        print(f"  {name:<36} {alerted:.3f} / {right:.3f}  ({len(datasets)} files)")
    if baseline is not None:
        print(f"  (baseline SQLite CPU time {baseline.seconds:.1f}s vs native {native_s:.1f}s)")

    if args.no_differential:
        return 0
    # differential on a seeded sample per group, with the speed ratio on the same sample
    sample = [r for key in sorted(groups, key=str) for r in groups[key]]
    regression = [r for p in sorted(SIGMA.glob("regression_data/**/*.evtx.gz")) for r in read_records(p)]
    sample.extend(regression)
    texts = rule_yaml_by_id(rs)
    d = differential(sample, rs.rules, texts)
    print(
        f"\ndifferential vs pySigma SQLite backend: {len(sample)} events "
        f"(<= {args.diff_per_group} per channel/event id, seeded, + {len(regression)} regression events)"
    )
    print(f"  rules compared {d.rules_compared}; reference cannot run {len(d.not_converted)}")
    print(
        f"  rule x event decisions {d.decisions}; agree {d.agree} "
        f"({100 * d.agree / max(1, d.decisions):.3f} %)"
    )
    print(
        f"  speed on this sample: native {d.native_seconds:.2f}s, "
        f"SQLite reference {d.reference_seconds:.2f}s "
        f"(native {d.reference_seconds / max(1e-9, d.native_seconds):.1f}x faster)"
    )
    titles = {r.id: r.title for r in rs.rules}
    for (rid, direction), n in d.disagreements.most_common(40):
        print(f"  differ x{n:<5} {direction:<15} {rid} {titles.get(rid, '')[:60]}")
    for reason, n in Counter(v.split(":")[0] for v in d.not_converted.values()).most_common(8):
        print(f"  reference cannot run x{n}: {reason}")
    dn = differential(sample, rs.rules, texts, nocase=True)
    print(
        f"  with Sigma's case rule applied to the reference (COLLATE NOCASE columns): agree {dn.agree} of "
        f"{dn.decisions} ({100 * dn.agree / max(1, dn.decisions):.3f} %)"
    )
    for (rid, direction), n in dn.disagreements.most_common(40):
        print(f"  still differ x{n:<5} {direction:<15} {rid} {titles.get(rid, '')[:60]}")
    print(
        f"\n(wall clock for the whole run: {time.time() - wall0:.0f}s on a shared machine; "
        "speeds above are CPU time)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
