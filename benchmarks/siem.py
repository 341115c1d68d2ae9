"""Figures for docs/siem.md: records read and alerts per real sample, read and engine speed, output speed.

python benchmarks/siem.py            # prints tables; never passes or fails on time
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from healthsec.config import Settings
from healthsec.detect.rules.external import ExternalAlertDetector
from healthsec.ingest.siem import EveSource
from healthsec.ingest.siem.netflow import NetflowFileSource
from healthsec.model import Flow, LogRecord, ParseError
from healthsec.respond import siem
from healthsec.services.ingest_files import run_file
from healthsec.services.outputs import AssetIndex, finding_of
from healthsec.store import Store

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def eve() -> None:
    print(
        "| file | records read | flows | other records | parse errors | skipped (stats) | alerts "
        "| with ATT&CK | read records/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for p in sorted((DATA / "suricata-eve-samples").glob("*/*.json*")):
        src = EveSource(p)
        t0 = time.perf_counter()
        items = list(src.read())
        secs = time.perf_counter() - t0
        events = [i for i in items if not isinstance(i, ParseError)]
        alerts = ExternalAlertDetector().detect(events)
        flows = sum(isinstance(e, Flow) for e in events)
        print(
            f"| {p.parent.name}/{p.name} | {len(events)} | {flows} | {len(events) - flows} "
            f"| {len(items) - len(events)} | {sum(src.skipped.values())} | {len(alerts)} "
            f"| {sum(bool(a.techniques) for a in alerts)} | {len(items) / secs:,.0f} |"
        )


def engine() -> None:
    print(
        "\nThrough the engine (Pipeline, profile `external-alerts` + flow baselines, SQLite in a temp dir):"
    )
    settings = Settings(detectors=("external-alerts", "flow-iforest", "flow-beacon"))
    for rel in ("mssis-icedid-2022-03-21/out.json.gz", "eve-json-parser-ad-traffic/eve.json.gz"):
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(str(Path(tmp) / "b.db"), "bench")
            t0 = time.perf_counter()
            run = run_file(store, settings, EveSource(DATA / "suricata-eve-samples" / rel))
            secs = time.perf_counter() - t0
            store.close()
        print(
            f"- {rel}: {run.events} events, {run.alerts} alerts ({run.by_detector}), {run.incidents} "
            f"incident(s), {secs:.1f} s = {run.events / secs:,.0f} events/s"
        )


def netflow() -> None:
    base = DATA / "netflow-ipfix-captures"
    print(
        "\n| capture set | files | packets | flows | option records | malformed | held | released "
        "| never got a template | packets/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    sets = {
        "pmacct (each pcap)": [[p] for p in sorted(base.glob("pmacct/*/*.pcap"))],
        "akvorado (template file, then data file)": _akvorado_pairs(base / "akvorado"),
        "logstash .dat (one by one)": [
            [p] for p in sorted((base / "logstash-codec-netflow-dat").glob("*.dat"))
        ],
    }
    for name, groups in sets.items():
        total: Counter[str] = Counter()
        secs = 0.0
        for paths in groups:
            src = NetflowFileSource(paths)
            t0 = time.perf_counter()
            list(src.read())
            secs += time.perf_counter() - t0
            assert src.decoder is not None
            total.update(src.decoder.stats.__dict__)
        files = sum(len(g) for g in groups)
        print(
            f"| {name} | {files} | {total['packets']} | {total['flows']} | {total['option_records']} "
            f"| {total['malformed']} | {total['held']} | {total['released']} | {total['given_up']} "
            f"| {total['packets'] / secs:,.0f} |"
        )


def _akvorado_pairs(folder: Path) -> list[list[Path]]:
    out = []
    for p in sorted(folder.glob("*.pcap")):
        if "template" in p.name:
            continue
        tpl = [folder / p.name.replace("data", t) for t in ("template", "templates")]
        out.append([*[t for t in tpl if t.exists() and "data" in p.name], p])
    return out


def outputs() -> None:
    src = EveSource(DATA / "suricata-eve-samples" / "mssis-icedid-2022-03-21" / "out.json.gz")
    events = [i for i in src.read() if isinstance(i, LogRecord)]
    alerts = ExternalAlertDetector().detect(events)
    index = AssetIndex(())
    findings = [finding_of(a, org="bench", assets=index) for a in alerts] * 10
    print(f"\nOutput formatting with validation, {len(findings)} alert findings:")
    for fmt in ("ocsf", "ecs", "cef"):
        siem.render(findings[0], fmt)  # the libraries load once, outside the timing
        t0 = time.perf_counter()
        for f in findings:
            siem.render(f, fmt)
        secs = time.perf_counter() - t0
        print(f"- {fmt}: {len(findings) / secs:,.0f} records/s")


if __name__ == "__main__":
    if not DATA.is_dir():
        sys.exit(f"shared data not found at {DATA}")
    eve()
    engine()
    netflow()
    outputs()
