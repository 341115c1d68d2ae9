"""Service benchmark: HTTP ingest → NATS JetStream → workers → PostgreSQL, against in-process bus + SQLite.

The default detector profile runs (Sigma, rules, baselines after their learning day) on the demo's event
mix: simulated hospital days (flows, host logs, HL7/DICOM, FHIR accesses, telemetry), the first day being
the learning period. Prints events per second end to end (first request sent → every event stored AND
detected: the detection cursor past the last event) and the p50/p99 latency of ``GET /api/v1/alerts``
measured while ingesting; then the Sigma detector's own rate on the mix's host logs, on one core.
The servers and workers run as separate processes, as in production.

    python3 benchmarks/service.py [--events 60000] [--workers 1 2]
    python3 benchmarks/service.py --scenario outage [--events 40000] [--outage-s 10]   (service_outage.py)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

# benchmarks/sigma.py would shadow pySigma's ``sigma`` package, which the detectors import
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from healthsec.bus.nats import NatsConfig, connect  # noqa: E402
from healthsec.model import Alert, Severity  # noqa: E402
from healthsec.store import Store  # noqa: E402
from healthsec.store.auth import AuthStore  # noqa: E402

PG_URL = os.environ.get("HEALTHSEC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BATCH = 1000
SHARED_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()
# a batch of the mix spans about 1.6 h of event time (the simulated days are compressed): hours stay open
# 2 h after a later event, so a batch overtaken by the next one is still detected in its hour
LATENESS_S = 7200
T0 = datetime(2026, 11, 28, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_mix(n: int, seed: int = 7) -> tuple[list[Any], list[Any]]:
    """At least ``n`` events of the simulated hospital: a benign day, then attacked days, in time order."""
    from healthsec.sim import CAMPAIGNS, simulate

    base = simulate(seed, day=0, campaigns=())
    events, assets, day = list(base.events), list(base.assets), 1
    while len(events) < n:
        sim = simulate(seed, day=day, hospital=base.hospital, campaigns=tuple(CAMPAIGNS))
        events += sim.events
        assets = list(sim.assets)
        day += 1
    events.sort(key=lambda e: (e.ts, e.id))
    return assets, events[:n]


def bodies(events: list[Any]) -> list[bytes]:
    from healthsec.model.codec import to_dict

    return [
        orjson.dumps({"events": [to_dict(e) for e in events[start : start + BATCH]]})
        for start in range(0, len(events), BATCH)
    ]


def sigma_rate(events: list[Any]) -> tuple[int, float]:
    """The Sigma detector alone over the mix's host logs, in this process (one core): (records, records/s)."""
    from healthsec.config import load_settings
    from healthsec.detect.rules.sigma import SigmaDetector
    from healthsec.model import LogRecord
    from healthsec.pipeline import sigma_ruleset

    rules = sigma_ruleset(load_settings(shared_data=SHARED_DATA))
    logs = [e for e in events if isinstance(e, LogRecord)]
    if rules is None or not logs:
        return len(logs), 0.0
    det = SigmaDetector(rules)
    t = time.process_time()
    for start in range(0, len(logs), 5000):
        det.detect(logs[start : start + 5000])
    return len(logs), len(logs) / max(time.process_time() - t, 1e-9)


def seed(db: str, org: str, assets: list[Any]) -> str:
    """An organisation with its inventory, an admin token and 1,000 alerts for the list endpoint."""
    store = Store.open(db, org)
    store.assets.upsert_many(assets)
    auth = AuthStore(store.engine)
    auth.create_org(org)
    alerts = [
        Alert(
            id=f"a-{org}-{i}",
            ts=T0 + timedelta(seconds=i),
            detector="bench",
            detector_version="1",
            title="bench alert",
            score=0.5,
            severity=Severity.MEDIUM,
            explanation="seeded for the benchmark",
        )
        for i in range(1000)
    ]
    store.alerts.add_many(alerts)
    _, token = auth.create_token(org, "admin", "bench")
    store.close()
    return token


def latency_probe(url: str, token: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        while not stop.is_set():
            t = time.perf_counter()
            r = c.get("/api/v1/alerts", params={"limit": 100})
            out.append(time.perf_counter() - t)
            r.raise_for_status()
            time.sleep(0.05)


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process still running, then wait (SIGKILL after 20 s)."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


def wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    # several API processes import (and compile the SigmaHQ set) slowly on a loaded machine
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stdout.read() if proc.stdout else ''!r}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not start")


def wait_worker(proc: subprocess.Popen[bytes]) -> None:
    """Wait for the worker's start line, then drop the rest of its output (so the pipe never fills)."""
    assert proc.stdout is not None
    out = proc.stdout
    seen = []
    for line in iter(out.readline, b""):
        if b"healthsec worker on" in line:
            break
        seen.append(line)
    else:
        raise RuntimeError(f"worker did not start: {b''.join(seen)[-500:]!r}")
    threading.Thread(target=lambda: [None for _ in iter(out.readline, b"")], daemon=True).start()


def run(
    label: str,
    db: str,
    env_extra: dict[str, str],
    workers: int,
    mix: tuple[list[Any], list[Any]],
    api_workers: int = 1,
) -> dict[str, Any]:
    from healthsec.store.detection import detection

    assets, events = mix
    n = len(events)
    org = f"bench-{uuid.uuid4().hex[:8]}"
    token = seed(db, org, assets)
    port = free_port()
    env = {
        **os.environ,
        "HEALTHSEC_DB": db,
        # absolute: the processes find the SigmaHQ set whatever the working directory
        "HEALTHSEC_SHARED_DATA": str(SHARED_DATA),
        "HEALTHSEC_DETECTION_LATENESS_S": str(LATENESS_S),
        **env_extra,
    }
    cli = [sys.executable, "-m", "healthsec.cli"]
    procs = [
        subprocess.Popen(
            [*cli, "serve", "--port", str(port), "--workers", str(api_workers)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    ]
    workers_ = [
        subprocess.Popen([*cli, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(workers)
    ]
    procs += workers_
    url = f"http://127.0.0.1:{port}"
    store = Store.open(db, org, upgrade=False)
    try:
        wait_http(url, procs[0])
        for w in workers_:  # a worker's first line comes once its engine is built (SigmaHQ compiled)
            wait_worker(w)
        payloads = bodies(events)
        latencies: list[float] = []
        stop = threading.Event()
        probe = threading.Thread(target=latency_probe, args=(url, token, stop, latencies))
        probe.start()
        start = time.perf_counter()

        def sender(chunk: Any) -> None:
            with httpx.Client(
                base_url=url,
                timeout=120,
                headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
            ) as c:
                for body in chunk:
                    c.post("/api/v1/events", content=body).raise_for_status()

        # two senders take batches from one queue in time order: at most two batches are in flight, so
        # events arrive out of order by at most one batch, which the allowed lateness (LATENESS_S) covers
        queue: list[bytes] = list(reversed(payloads))
        lock = threading.Lock()

        def next_batches() -> Any:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                yield body

        senders = [threading.Thread(target=sender, args=(next_batches(),)) for _ in range(2)]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        accepted = time.perf_counter() - start
        last = max(e.ts for e in events)

        def detected() -> bool:
            cursor = detection(store).get().cursor
            return cursor is not None and cursor > last

        while store.events.count() < n or not detected():
            if time.perf_counter() - start > 900:
                raise RuntimeError("events were not all stored and detected within 15 minutes")
            time.sleep(0.1)
        total = time.perf_counter() - start
        stop.set()
        probe.join()
        stored = store.events.count()
    finally:
        stop_all(procs)
        store.close()
    lat = sorted(latencies)
    return {
        "label": label,
        "events": n,
        "stored": stored,
        "accept_s": accepted,
        "total_s": total,
        "eps": n / total,
        "p50_ms": 1000 * statistics.median(lat) if lat else None,
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None,
        "probes": len(lat),
        "alerts": store_alerts(db, org),
    }


def store_alerts(db: str, org: str) -> int:
    s = Store.open(db, org, upgrade=False)
    try:
        return s.alerts.count() - 1000  # minus the seeded ones
    finally:
        s.close()


async def drop_streams(cfg: NatsConfig) -> None:
    nc, js = await connect(cfg)
    for name in (cfg.stream, cfg.dead_letter_stream):
        with contextlib.suppress(Exception):  # already gone
            await js.delete_stream(name)
    await nc.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--api-workers", type=int, default=1, help="API processes in the NATS runs")
    ap.add_argument(
        "--scenario",
        choices=["throughput", "outage"],
        default="throughput",
        help="outage: 10 s without the broker, 10 s without the database, a worker killed, under load",
    )
    ap.add_argument("--outage-s", type=float, default=10.0, help="length of each outage (outage scenario)")
    ap.add_argument("--rate", type=float, default=1500.0, help="events/s sent (outage scenario)")
    args = ap.parse_args()
    if args.scenario == "outage":
        import importlib.util

        spec = importlib.util.spec_from_file_location(
            "service_outage", Path(__file__).with_name("service_outage.py")
        )
        assert spec is not None
        assert spec.loader is not None
        outage = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(outage)
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start (shared)")
        outage.run_outage(PG_URL, args.events, args.outage_s, args.rate, free_port, wait_http, stop_all)
        return
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start (shared machine)")
    mix = demo_mix(args.events)
    kinds: dict[str, int] = {}
    for e in mix[1]:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    print(f"workload: {len(mix[1])} events of the demo's mix {kinds}, {BATCH} per HTTP request, 2 senders")
    print("detectors: the default profile (healthsec detectors list); the first simulated day is learnt")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        ref = run("in-process bus + SQLite (reference)", f"sqlite:///{Path(tmp) / 'bench.db'}", {}, 0, mix)
        results.append(ref)
    for k in args.workers:
        tag = uuid.uuid4().hex[:8]
        cfg = NatsConfig(stream=f"BENCH_{tag}", prefix=f"bench{tag}", durable=f"w{tag}")
        env = {
            "HEALTHSEC_BUS": "nats",
            "HEALTHSEC_NATS_STREAM": cfg.stream,
            "HEALTHSEC_NATS_SUBJECT": cfg.prefix,
            "HEALTHSEC_NATS_DURABLE": cfg.durable,
        }
        try:
            label = f"HTTP({args.api_workers}) → NATS → {k} worker(s) → PostgreSQL"
            results.append(run(label, PG_URL, env, k, mix, args.api_workers))
        finally:
            asyncio.run(drop_streams(cfg))
    print(
        f"\n{'pipeline':<42} {'stored':>8} {'accept s':>9} {'total s':>8} {'events/s':>9} "
        f"{'vs ref':>7} {'alerts p50':>10} {'p99':>8} {'alerts':>7}"
    )
    for r in results:
        print(
            f"{r['label']:<42} {r['stored']:>8} {r['accept_s']:>9.2f} {r['total_s']:>8.2f} {r['eps']:>9.0f} "
            f"{r['eps'] / ref['eps']:>7.2f} {r['p50_ms']:>8.1f}ms {r['p99_ms']:>6.1f}ms {r['alerts']:>7}"
        )
    same = all(r["alerts"] == ref["alerts"] for r in results)
    print(f"alerts raised equal to the reference in every run: {'yes' if same else 'NO'}")
    records, rate = sigma_rate(mix[1])
    print(f"\nSigma share: {records} host-log records of the mix, {rate:,.0f} records/s on one core (CPU)")
    print("targets: >= 10,000 events/s with 2 workers; alert-list p99 < 200 ms while ingesting;")
    print("         Sigma >= 25,000 events/s per core")


if __name__ == "__main__":
    main()
