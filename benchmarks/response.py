"""Reaction time of the simulated hospital with and without playbooks, per campaign.

Runs ``healthsec.demo.run_demo`` as it is: the pipeline hands the incidents of each hourly micro-batch
to the playbooks (``services.playbooks.on_incidents``) at the batch's end in event time, as the service
does after each detection run. A case therefore opens when the batch that made (or grew) a matching
incident closes, not at the first alert's own time. Without playbooks nothing opens a case or prepares
a containment request until a person does, so those stages stay empty. The playbook hook's own
wall-clock time is measured inside the run and compared with the whole pipeline's.

    python benchmarks/response.py [--seeds 7,4,3,11]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

# benchmarks/sigma.py would shadow pySigma's ``sigma`` package, which the detectors import
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from healthsec.config import Settings  # noqa: E402
from healthsec.demo import run_demo  # noqa: E402
from healthsec.respond.reaction import reaction_times  # noqa: E402
from healthsec.sim.evaluate import alert_campaign  # noqa: E402
from healthsec.store import Store  # noqa: E402
from healthsec.store.cases import cases  # noqa: E402


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.0f} s"


def one_seed(seed: int, workdir: Path) -> tuple[list[dict], list[dict], float, float, int]:
    import healthsec.services.playbooks as pb

    store = Store.open(str(workdir / f"response-{seed}.db"))
    hook = pb.on_incidents
    spent = [0.0, 0]

    def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return hook(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started
            spent[1] += len(args[1])

    pb.on_incidents = timed  # run_demo imports the hook when it runs
    try:
        t = time.perf_counter()
        run = run_demo(seed, store, settings=Settings(db="unused.db", jurisdictions=("eu:DE", "us")))
        pipeline_s = time.perf_counter() - t
    finally:
        pb.on_incidents = hook
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
    engine_s = spent[0]
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
    return base, with_pb, pipeline_s, engine_s, int(spent[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="7,4,3,11")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    gains: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            base, with_pb, pipeline_s, engine_s, n_inc = one_seed(seed, Path(tmp))
            print(f"\nseed {seed}: seconds from first malicious event (event time of the simulated day)")
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
                f"playbook hook {engine_s:.2f} s for {n_inc} incident updates "
                f"({1000 * engine_s / max(n_inc, 1):.0f} ms each); "
                f"demo pipeline {pipeline_s:.2f} s; engine/pipeline = {engine_s / pipeline_s:.3f}"
            )
    for k, v in gains.items():
        print(f"{k}: median {statistics.median(v):.2f} s, max {max(v):.2f} s over {len(v)} campaign runs")


if __name__ == "__main__":
    main()
