"""Console benchmark: the incident list and an incident page rendered server-side, beside the same API reads.

Seeds PostgreSQL through the store's repositories (bulk) with 10,000 incidents and 200,000 alerts (20 per
incident, entities on 50 inventoried assets) in one organisation (kept between runs: re-seeding is skipped
when the counts are there), signs in through the console's form, then times N requests of each:

- console ``GET /incidents`` (open incidents, first page of 50) and ``GET /incidents/{id}`` (random ids);
- API ``GET /api/v1/incidents?limit=50`` and ``GET /api/v1/incidents/{id}`` (the same use cases).

Requests go through the ASGI app in process (httpx TestClient: no network), one at a time. Prints p50/p95
in milliseconds and each page's weight with its assets (HTML + CSS + JS, uncompressed). Never pass/fail.

    HEALTHSEC_BENCH_PG=postgresql://postgres@127.0.0.1:5432/test_console python3 benchmarks/console.py [-n 40]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from fastapi.testclient import TestClient  # noqa: E402

from healthsec.api import create_app  # noqa: E402
from healthsec.config import load_settings  # noqa: E402
from healthsec.model import Alert, Asset, Entity, EntityKind, Incident, Severity  # noqa: E402
from healthsec.model.assets import Criticality  # noqa: E402
from healthsec.store import Store  # noqa: E402
from healthsec.store.auth import AuthStore  # noqa: E402

ORG = "bench-console"
INCIDENTS, PER_INCIDENT = 10_000, 20
T0 = datetime(2026, 10, 1, tzinfo=UTC)
STATIC = Path(__file__).resolve().parents[1] / "src" / "healthsec" / "web" / "static"


def seed(store: Store) -> float:
    """Fill the organisation once; return the seconds it took (0 when already seeded)."""
    if store.incidents.count() >= INCIDENTS and store.alerts.count() >= INCIDENTS * PER_INCIDENT:
        return 0.0
    start = time.perf_counter()
    assets = [
        Asset(
            id=f"as-{k}",
            name=f"host-{k}",
            role="workstation" if k % 5 else "pacs",
            zone="clinical" if k % 2 else "admin",
            ip=f"10.20.{k // 250}.{k % 250 + 1}",
            criticality=Criticality(1 + k % 5),
        )
        for k in range(50)
    ]
    store.assets.upsert_many(assets)
    rng = random.Random(7)
    for start_i in range(0, INCIDENTS, 500):
        end = min(INCIDENTS, start_i + 500)
        if store.incidents.get(f"in-{end - 1}") is not None:  # stored by an interrupted run
            for _ in range(start_i, end):
                rng.randrange(50), rng.randrange(5)  # the same draws as when it was seeded
            continue
        alerts: list[Alert] = []
        incidents: list[Incident] = []
        for i in range(start_i, min(INCIDENTS, start_i + 500)):
            ts = T0 + timedelta(minutes=7 * i)
            host = assets[rng.randrange(50)]
            ents = (Entity(EntityKind.IP, host.ip or ""), Entity(EntityKind.USER, f"user{i % 300}"))
            ids = tuple(f"al-{i}-{j}" for j in range(PER_INCIDENT))
            sev = Severity(rng.randrange(5))
            alerts += [
                Alert(
                    id=aid,
                    ts=ts + timedelta(seconds=j),
                    detector=f"bench.d{j % 6}",
                    detector_version="1",
                    title=f"benchmark alert {j} on {host.name}",
                    score=0.5,
                    severity=sev,
                    explanation="seeded by benchmarks/console.py",
                    entities=ents,
                    techniques=("T1110",) if j % 2 else ("T1021",),
                    tactics=("credential-access",) if j % 2 else ("lateral-movement",),
                )
                for j, aid in enumerate(ids)
            ]
            incidents.append(
                Incident(
                    id=f"in-{i}",
                    title=f"benchmark incident {i} on {host.name}",
                    first_seen=ts,
                    last_seen=ts + timedelta(seconds=PER_INCIDENT),
                    severity=sev,
                    score=0.5,
                    alert_ids=ids,
                    entities=ents,
                    techniques=("T1021", "T1110"),
                    tactics=("credential-access", "lateral-movement"),
                )
            )
        store.alerts.add_many(alerts)
        store.incidents.upsert_many(incidents)
        print(f"  seeded {min(INCIDENTS, start_i + 500)} incidents", file=sys.stderr)
    return time.perf_counter() - start


def timed(
    client: TestClient, paths: list[str], headers: dict[str, str] | None = None
) -> tuple[float, float, int]:
    """p50 and p95 in ms over the paths (each requested once, in order) and the last body's size."""
    ms, size = [], 0
    for path in paths:
        t = time.perf_counter()
        r = client.get(path, headers=headers or {})
        ms.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
        size = len(r.content)
    ms.sort()
    return statistics.median(ms), ms[max(0, round(0.95 * len(ms)) - 1)], size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=40, help="requests per measurement")
    ap.add_argument("--skip-seed", action="store_true", help="time what is stored (the counts are printed)")
    args = ap.parse_args()
    url = os.environ.get("HEALTHSEC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test_console")
    store = Store.open(url, ORG)
    auth = AuthStore(store.engine)
    auth.create_org(ORG)
    took = 0.0 if args.skip_seed else seed(store)
    print(f"seed: {store.incidents.count()} incidents, {store.alerts.count()} alerts ({took:.0f} s)")
    token = auth.create_token(ORG, "analyst", "bench", ttl=timedelta(hours=1))[1]
    settings = load_settings(db="sqlite:///unused.db", detectors_disabled=("sigma",))
    rng = random.Random(11)
    with TestClient(create_app(settings, store=store)) as client:
        form = client.get("/sign-in").text
        pre = re.search(r'name="csrf" value="([^"]+)"', form)
        assert pre is not None
        r = client.post("/sign-in", data={"csrf": pre.group(1), "token": token, "next": "/incidents"})
        assert r.status_code == 200, r.text[:300]
        assert "Incidents" in r.text, r.text[:300]
        stored = store.incidents.count()
        ids = [f"in-{rng.randrange(stored)}" for _ in range(args.n)]
        timed(client, ["/incidents", f"/incidents/{ids[0]}"])  # warm up (ATT&CK copy, templates)
        api = {"Authorization": f"Bearer {token}"}
        print(f"\n{'request':42} {'p50 ms':>8} {'p95 ms':>8} {'body KB':>8}   (in-process, PostgreSQL)")
        plan = [
            ("console GET /incidents", ["/incidents"] * args.n, None),
            ("api     GET /api/v1/incidents?limit=50", ["/api/v1/incidents?limit=50"] * args.n, api),
            ("console GET /incidents/{id}", [f"/incidents/{i}" for i in ids], None),
            ("api     GET /api/v1/incidents/{id}", [f"/api/v1/incidents/{i}" for i in ids], api),
            ("console GET /alerts", ["/alerts"] * max(3, args.n // 8), None),
            ("console GET / (overview)", ["/"] * max(3, args.n // 8), None),
        ]
        rows = []
        for name, paths, headers in plan:
            p50, p95, size = timed(client, paths, headers)
            rows.append((name, size))
            print(f"{name:42} {p50:8.1f} {p95:8.1f} {size / 1024:8.1f}   n={len(paths)}", flush=True)
    assets = sum(p.stat().st_size for p in (STATIC / "console.css", STATIC / "console.js"))
    assets += (STATIC / "vendor" / "htmx-2.0.11.min.js").stat().st_size
    print(
        f"\npage weight with assets (CSS + JS + htmx = {assets / 1024:.1f} KB, uncompressed; limit 300 KB):"
    )
    for name, size in rows:
        if name.startswith("console"):
            total = (size + assets) / 1024
            print(f"  {name[8:]:34} {total:7.1f} KB {'ok' if total <= 300 else 'OVER'}")


if __name__ == "__main__":
    main()
