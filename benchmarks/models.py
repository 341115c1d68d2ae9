"""Model-artefact benchmark: register, load from the store and watch for promotions, beside the reference
of loading the same model directory from disk (``healthsec detect flows --model DIR``'s path).

Trains the flow ensemble on NSL-KDD ``KDDTrain+_20Percent`` (as ``healthsec train flows`` does), then
prints for SQLite and, when ``HEALTHSEC_TEST_PG`` names a database, PostgreSQL: the artefact size, the
time to register it, to load the promoted model (ratio against the disk reference), and the cost of
one watcher poll when nothing changed. Figures only; nothing passes or fails on time.

    HEALTHSEC_TEST_PG=postgresql://postgres@127.0.0.1:5432/test_models python3 benchmarks/models.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from healthsec.detect.ml.ensemble import FlowEnsemble
from healthsec.ingest.flows import read_table
from healthsec.ingest.flows.modelfiles import load_model_dir, save_model_dir
from healthsec.services.train import build_artefact
from healthsec.store import Store
from healthsec.store.models import ModelWatcher, load_promoted, models

DATA = Path(os.environ.get("HEALTHSEC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    train = DATA / "nsl-kdd" / "KDDTrain+_20Percent.txt.gz"
    table = read_table(train, "nsl-kdd")
    ens = FlowEnsemble.train(table.frame, table.categorical, table.labels, fpr=0.05, seed=0)
    files = ens.to_artifacts()
    size = sum(len(b) for b in files.values())
    print(f"flow ensemble on {train.name}: {len(files)} files, {size / 1e6:.2f} MB")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        save_model_dir(model_dir, files)
        disk = best_of(lambda: FlowEnsemble.from_artifacts(load_model_dir(model_dir, ("schema.json",))))
        print(f"reference: load from the model directory {disk * 1000:.1f} ms (= 1.0)")
        urls = [("sqlite", str(Path(tmp) / "bench.db"))]
        if os.environ.get("HEALTHSEC_TEST_PG"):
            urls.append(("postgresql", os.environ["HEALTHSEC_TEST_PG"]))
        else:
            print("PostgreSQL skipped: set HEALTHSEC_TEST_PG to your own test database", file=sys.stderr)
        for label, url in urls:
            store = Store.open(url, f"bench-{uuid.uuid4().hex[:8]}")
            repo = models(store)
            art = build_artefact("flows", files, [train])
            start = time.perf_counter()
            stored = repo.add(art, files)
            added = time.perf_counter() - start
            repo.promote("flows", stored.version)
            load = best_of(lambda store=store: load_promoted(store, "flows"))
            watcher = ModelWatcher(store, ["flows", "devices", "telemetry"])
            watcher.poll()
            polls = []
            for _ in range(200):
                start = time.perf_counter()
                watcher.poll()
                polls.append(time.perf_counter() - start)
            print(
                f"{label}: register {added * 1000:.1f} ms; load promoted {load * 1000:.1f} ms "
                f"({load / disk:.2f}x the disk reference, digests and schema checked); "
                f"watcher poll, nothing changed: median {statistics.median(polls) * 1000:.2f} ms"
            )
            store.close()


if __name__ == "__main__":
    main()
