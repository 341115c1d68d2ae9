"""Benchmark for sharing: STIX export/import rate vs. the stix2 library object by object, TAXII list
requests per second on a 100,000-object collection (pages checked for consistency while objects are
added), and IP addresses pseudonymised per second.

Run with ``python benchmarks/sharing.py`` (``--help`` for sizes). The data are synthetic alerts and
incidents (``healthsec.share.stix_sample``), the same objects for our code and for the library. Times are
wall-clock on this machine and every speed is also given as a ratio to a reference run in this script.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import stix2

from healthsec.model import Incident
from healthsec.privacy.pseudonymise import IpPseudonymiser, SharingKeys
from healthsec.share.stix import dumps_bundle, export_bundle, import_bundle, parse_bundle, validate_bundle
from healthsec.share.stix_sample import sample_alerts, sample_incident
from healthsec.share.taxii_serve import BackgroundServer
from healthsec.share.taxii_server import create_taxii_app
from healthsec.store import Store
from healthsec.store.sharing import Sharing

KEYS = SharingKeys.from_secret(b"benchmark-community-key-not-secret!!")
SECRET = "benchmark partner secret"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def export_import(n_alerts: int, tmp: Path) -> None:
    alerts = sample_alerts(n_alerts)
    incidents: list[Incident] = [
        sample_incident(alerts[i : i + 2], id=f"incident-{i}") for i in range(0, n_alerts - 1, 2)
    ]
    t_export, raw = timed(lambda: dumps_bundle(export_bundle(incidents, alerts, producer="General Hospital")))
    bundle = orjson.loads(raw)
    n = len(bundle["objects"])
    print(f"STIX export: {n} objects from {len(incidents)} incidents / {n_alerts} alerts")
    print(f"  healthsec export_bundle + orjson:       {t_export:7.2f} s  {n / t_export:10.0f} objects/s")

    def lib_build() -> list[str]:
        # the stix2 library building and serialising the same objects one by one
        return [stix2.parse(obj, allow_custom=False).serialize() for obj in bundle["objects"]]

    t_lib, _ = timed(lib_build)
    print(f"  stix2 library, object by object:       {t_lib:7.2f} s  {n / t_lib:10.0f} objects/s")
    print(f"  export speed-up vs stix2: {t_lib / t_export:.1f}x (target >= 10x)")
    t_val, errors = timed(lambda: validate_bundle(bundle))
    print(
        f"  stix2-validator on the whole bundle: {'valid' if not errors else f'{len(errors)} ERRORS'} "
        f"({t_val:.1f} s, {n / t_val:.0f} objects/s; run once at the edge, not per export)"
    )
    if errors:
        print("   first errors:", errors[:3])

    store = Store.open(str(tmp / "import.db"), "bench")
    sh = Sharing.of(store)
    t_parse, _ = timed(lambda: parse_bundle(raw))
    t_import, res = timed(lambda: import_bundle(raw, sh, source="partner"))
    assert res.ok, res
    assert res.added == n, res
    t_again, res2 = timed(lambda: import_bundle(raw, sh, source="partner"))
    assert res2.added == 0
    assert res2.duplicates == n

    def lib_parse() -> int:
        return sum(1 for obj in orjson.loads(raw)["objects"] if stix2.parse(obj, allow_custom=False))

    t_libp, _ = timed(lib_parse)
    print(f"STIX import of the same {n} objects ({len(raw) / 1e6:.1f} MB):")
    print(f"  healthsec parse_bundle (checks only):   {t_parse:7.2f} s  {n / t_parse:10.0f} objects/s")
    print(
        f"  healthsec import_bundle (checks + SQLite, one transaction): "
        f"{t_import:5.2f} s  {n / t_import:8.0f} objects/s"
    )
    print(f"  re-import, every version already known: {t_again:6.2f} s  {n / t_again:10.0f} objects/s")
    print(f"  stix2.parse, object by object (no storage): {t_libp:5.2f} s  {n / t_libp:8.0f} objects/s")
    print(
        f"  import speed-up vs stix2: {t_libp / t_import:.1f}x with storage, "
        f"{t_libp / t_parse:.1f}x checks only (target >= 10x)"
    )
    store.close()


def _object(i: int) -> dict[str, Any]:
    """Every tenth object is a malware SDO, the rest indicators (so that a type filter has to skip rows)."""
    if i % 10 == 9:
        return {
            "type": "malware",
            "spec_version": "2.1",
            "id": f"malware--{uuid.UUID(int=i + 1, version=4)}",
            "created": "2026-04-01T00:00:00.000Z",
            "modified": "2026-04-01T00:00:00.000Z",
            "name": f"family {i}",
            "is_family": True,
            "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],
        }
    return _indicator(i)


def _indicator(i: int) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=i + 1, version=4)}",
        "created": "2026-04-01T00:00:00.000Z",
        "modified": "2026-04-01T00:00:00.000Z",
        "name": f"scanner {i}",
        "pattern": f"[ipv4-addr:value = '203.0.{i // 250 % 250}.{i % 250}']",
        "pattern_type": "stix",
        "valid_from": "2026-04-01T00:00:00Z",
        "confidence": 50 + i % 50,
        "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],
    }


def _serve(db: str, q: Any, stop: Any) -> None:
    store = Store.open(db, "bench")
    with BackgroundServer(create_taxii_app(lambda: store, keys=KEYS)) as url:
        q.put(url)
        stop.wait()
    store.close()


def taxii(n_objects: int, n_requests: int, tmp: Path) -> None:
    db = str(tmp / "taxii.db")
    store = Store.open(db, "bench")
    sh = Sharing.of(store)
    cid = sh.collections.create("feed", alias="feed")["id"]
    sh.partners.add("stmary", "St Mary", secret=SECRET, policy={"max_tlp": "amber"})
    sh.partners.grant("stmary", cid, read=True, write=True)
    t_load, _ = timed(
        lambda: [
            sh.objects.add_many(cid, [_object(i) for i in range(s, min(s + 5000, n_objects))])
            for s in range(0, n_objects, 5000)
        ]
    )
    seqs = [it.seq for it in sh.objects.page(cid, limit=n_objects, versions="all").items]
    print(
        f"TAXII: collection of {sh.objects.count(cid)} objects (loaded in {t_load:.1f} s); "
        "server in its own process, one client, HTTP keep-alive"
    )

    ctx = mp.get_context("spawn")
    q, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(db, q, stop), daemon=True)
    proc.start()
    url = q.get(timeout=60)
    objects_url = f"{url}/taxii2/api/collections/{cid}/objects/"
    headers = {"Accept": "application/taxii+json;version=2.1"}
    rng = random.Random(7)
    try:
        with httpx.Client(auth=("stmary", SECRET), headers=headers, timeout=30) as client:
            client.get(objects_url, params={"limit": 1}).raise_for_status()  # warm-up (one scrypt check)

            def list_pages(c: httpx.Client, offsets: list[int], extra: dict[str, Any]) -> int:
                got = 0
                for off in offsets:
                    r = c.get(objects_url, params={"limit": 100, "next": str(off), **extra})
                    r.raise_for_status()
                    got += len(r.json()["objects"])
                return got

            offsets = [rng.choice(seqs[: max(1, len(seqs) - 200)]) for _ in range(n_requests)]
            t_cold, got = timed(lambda: list_pages(client, offsets, {}))
            assert got == 100 * n_requests, got
            t_warm, got = timed(lambda: list_pages(client, offsets, {}))
            assert got == 100 * n_requests, got

            def concurrent(n_clients: int) -> int:
                share = [offsets[i::n_clients] for i in range(n_clients)]

                def work(part: list[int]) -> int:
                    with httpx.Client(auth=("stmary", SECRET), headers=headers, timeout=30) as c:
                        return list_pages(c, part, {})

                with ThreadPoolExecutor(n_clients) as pool:
                    return sum(pool.map(work, share))

            t_conc, got = timed(lambda: concurrent(4))
            assert got == 100 * n_requests, got
            filt_offsets = [rng.choice(seqs[: len(seqs) // 2]) for _ in range(n_requests)]
            flt = {"match[type]": "malware", "match[version]": "last"}
            t_filt, got_f = timed(lambda: list_pages(client, filt_offsets, flt))
            assert got_f > 0, got_f  # full pages on the default 100,000 objects; fewer on small runs

            def reference() -> None:  # the same pages straight from the store, no HTTP, no exit door
                for off in offsets:
                    sh.objects.page(cid, limit=100, after_seq=off)

            t_ref, _ = timed(reference)
            print(
                f"  list 100 objects at {n_requests} random offsets, first time served (exit door runs):"
                f" {n_requests / t_cold:6.0f} requests/s"
            )
            print(
                f"  the same pages again (released objects cached), one client:  {n_requests / t_warm:6.0f} "
                "requests/s (target >= 200)"
            )
            print(
                f"  the same pages again, 4 concurrent clients:                 {n_requests / t_conc:6.0f} "
                "requests/s"
            )
            print(
                f"  match[type]=malware (1 in 10) + match[version]=last, first time: "
                f"{n_requests / t_filt:5.0f} requests/s"
            )
            print(
                f"  reference, the same store query in-process, no HTTP:        {n_requests / t_ref:6.0f} "
                f"queries/s (warm HTTP request = {t_warm / t_ref:.1f}x a bare query)"
            )

            # consistency: page through everything while a writer adds objects between our requests
            seen: list[str] = []
            added = 0
            nxt: str | None = None
            pages = 0
            while True:
                params: dict[str, Any] = {"limit": 1000}
                if nxt:
                    params["next"] = nxt
                env = client.get(objects_url, params=params).json()
                seen += [o["id"] for o in env["objects"]]
                pages += 1
                if pages % 10 == 0:
                    body = orjson.dumps({"objects": [_indicator(n_objects + added + k) for k in range(50)]})
                    r = client.post(
                        objects_url,
                        content=body,
                        headers={"Content-Type": "application/taxii+json;version=2.1"},
                    )
                    r.raise_for_status()
                    added += 50
                if not env.get("more"):
                    break
                nxt = env["next"]
            dups = len(seen) - len(set(seen))
            print(
                f"  paging all {n_objects} objects by 1000 while {added} were added in between: "
                f"{len(seen)} received, {dups} duplicates, "
                f"{'every object exactly once' if len(set(seen)) == n_objects + added else 'MISSING OBJECTS'}"
            )
    finally:
        stop.set()
        proc.join(timeout=30)
        store.close()


def pseudonymise(n: int) -> None:
    ips = [f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in range(n)]
    cold = IpPseudonymiser(KEYS.ip_key, cache_size=2 * n)
    t_cold, _ = timed(lambda: [cold.ip(a) for a in ips])
    t_warm, _ = timed(lambda: [cold.ip(a) for a in ips])
    from yacryptopan import CryptoPAn

    ref = CryptoPAn(KEYS.ip_key)
    t_ref, _ = timed(lambda: [ref.anonymize(a) for a in ips[: n // 10]])
    print(f"IP pseudonymisation (healthsec.privacy, Crypto-PAn via yacryptopan) on {n} distinct addresses:")
    print(
        f"  first sight: {n / t_cold:9.0f} IPs/s; repeated (cache): {n / t_warm:9.0f} IPs/s; "
        f"bare yacryptopan reference: {n // 10 / t_ref:7.0f} IPs/s"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--alerts", type=int, default=1300, help="alerts to export (about 8 objects each)")
    ap.add_argument("--collection", type=int, default=100_000, help="objects in the TAXII collection")
    ap.add_argument("--requests", type=int, default=300, help="list requests per measurement")
    ap.add_argument("--ips", type=int, default=50_000, help="distinct IPs to pseudonymise")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export_import(args.alerts, Path(tmp))
        taxii(args.collection, args.requests, Path(tmp))
    pseudonymise(args.ips)
    return 0


if __name__ == "__main__":
    sys.exit(main())
