"""Reaction time of the simulated hospital with and without playbooks, per campaign.

Runs ``healthsec.demo.run_demo`` as it is (through its PipelineResult), then hands each incident to the
playbook engine at the moment the incident exists in event time (its first alert's raised_at) plus the
wall-clock time the engine itself takes. Without playbooks nothing opens a case or prepares a
containment request until a person does, so those stages stay empty.

    python benchmarks/response.py [--seeds 7,4,3,11]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

# benchmarks/sigma.py would shadow pySigma's ``sigma`` package, which the detectors import
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from healthsec.demo import run_demo  # noqa: E402
from healthsec.respond.playbook import builtin  # noqa: E402
from healthsec.respond.reaction import reaction_times  # noqa: E402
from healthsec.services.cases import CaseService, ResponseConfig  # noqa: E402
from healthsec.services.playbooks import PlaybookEngine  # noqa: E402
from healthsec.sim.evaluate import alert_campaign  # noqa: E402
from healthsec.store import Store  # noqa: E402
from healthsec.store.cases import cases  # noqa: E402


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.0f} s"


def one_seed(seed: int, workdir: Path) -> tuple[list[dict], list[dict], float, float, int]:
    store = Store.open(str(workdir / f"response-{seed}.db"))
    t = time.perf_counter()
    run = run_demo(seed, store)
    pipeline_s = time.perf_counter() - t
    day, result = run.attack_day, run.result
    labels = day.labels
    ts = {e.id: e.ts for e in day.events}
    first: dict[str, datetime] = {}
    for info in day.campaigns:
        mine = [ts[e] for e, c in labels.items() if c == info.name and e in ts]
        first[info.name] = min(mine) if mine else info.start
    alerts = list(result.alerts.values())
    raised = result.raised_at

    def campaign_of(a):  # type: ignore[no-untyped-def]
        return alert_campaign(a, labels)

    base = reaction_times(first, alerts, campaign_of, raised, result.incidents, {}, {})

    svc = CaseService(store, ResponseConfig(jurisdictions=("eu:DE", "us")))
    engine = PlaybookEngine(svc, builtin())
    order = sorted(result.incidents, key=lambda i: min(raised.get(a, i.first_seen) for a in i.alert_ids))
    t = time.perf_counter()
    for inc in order:
        at = min(raised.get(a, inc.first_seen) for a in inc.alert_ids)
        started = time.perf_counter()
        svc.clock = lambda at=at, started=started: at + timedelta(seconds=time.perf_counter() - started)
        engine.on_incidents([inc])
    engine_s = time.perf_counter() - t
    repo = cases(store)
    case_opened: dict[str, datetime] = {}
    ready: dict[str, datetime] = {}
    for c in repo.list(limit=10_000):
        for iid in c["body"]["incidents"]:
            case_opened[iid] = c["opened_at"]
            reqs = [
                datetime.fromisoformat(e["body"]["ready_at"]) for e in repo.entries(c["id"], "containment")
            ]
            if reqs:
                ready[iid] = min(reqs)
    with_pb = reaction_times(first, alerts, campaign_of, raised, result.incidents, case_opened, ready)
    benign = [
        i.id
        for i in result.incidents
        if i.id in case_opened
        and all(campaign_of(result.alerts[a]) is None for a in i.alert_ids if a in result.alerts)
    ]
    awaiting = sum(
        1
        for c in repo.list(limit=10_000)
        for e in repo.entries(c["id"], "containment")
        if e["body"]["status"] == "awaiting_approval"
    )
    print(
        f"seed {seed}: {repo.count()} cases ({len(benign)} on benign incidents), "
        f"{awaiting} requests await approval"
    )
    store.close()
    return base, with_pb, pipeline_s, engine_s, len(result.incidents)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="7,4,3,11")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    gains: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            base, with_pb, pipeline_s, engine_s, n_inc = one_seed(seed, Path(tmp))
            print(f"\nseed {seed}: seconds from first malicious event (event time; playbook wall time added)")
            print(
                f"{'campaign':<22} {'alert':>8} {'incident':>9} | {'case':>8} {'containment':>12} | "
                "without playbooks"
            )
            for b, w in zip(base, with_pb, strict=True):
                print(
                    f"{w['campaign']:<22} {_fmt(w['alert_s']):>8} {_fmt(w['incident_s']):>9} | "
                    f"{_fmt(w['case_s']):>8} {_fmt(w['containment_s']):>12} | "
                    f"case {_fmt(b['case_s'])}, containment {_fmt(b['containment_s'])}"
                )
                if w["case_s"] is not None and w["incident_s"] is not None:
                    gains.setdefault("case_after_incident", []).append(w["case_s"] - w["incident_s"])
                if w["containment_s"] is not None and w["incident_s"] is not None:
                    gains.setdefault("containment_after_incident", []).append(
                        w["containment_s"] - w["incident_s"]
                    )
            print(
                f"playbook engine {engine_s:.2f} s for {n_inc} incidents "
                f"({1000 * engine_s / max(n_inc, 1):.0f} ms each); "
                f"demo pipeline {pipeline_s:.2f} s; engine/pipeline = {engine_s / pipeline_s:.3f}"
            )
    for k, v in gains.items():
        print(f"{k}: median {statistics.median(v):.2f} s, max {max(v):.2f} s over {len(v)} campaign runs")


if __name__ == "__main__":
    main()
