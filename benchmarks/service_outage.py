"""Outage scenario of the service benchmark: 10 s without the broker, 10 s without the database and a
worker SIGKILLed, all under load; prints events lost, duplicated, 5xx other than 503, recovery times and
log lines per outage.

The broker is a nats-server of the script's own (free port, temporary store) and both it and PostgreSQL
are reached through TCP proxies that the script cuts (every connection dropped, new ones refused) and
restores: the shared services are never stopped. Run through ``python3 benchmarks/service.py
--scenario outage [--events 40000] [--outage-s 10]``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from healthsec.store import Store
from healthsec.store.auth import AuthStore
from healthsec.testing.faults import CuttableProxy

T0 = datetime(2026, 11, 28, tzinfo=UTC)
PER_REQUEST = 500


def _flow(i: int) -> dict[str, Any]:
    return {
        "kind": "flow",
        "id": f"o-{i}",
        "ts": (T0 + timedelta(milliseconds=100 * i)).isoformat(),
        "source": "zeek",
        "src_ip": f"10.0.{i // 250 % 250}.{i % 250 + 1}",
        "dst_ip": "10.1.0.9",
        "dst_port": 443,
        "bytes_out": 100 + i % 1000,
    }


def _through(proxy: CuttableProxy, url: str) -> str:
    parts = urlsplit(url)
    user = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{user[0]}@{host}" if len(user) == 2 else host))


class Logs:
    """The services' output, one file per process; lines counted between two marks."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: list[Path] = []

    def open(self, name: str) -> Any:
        path = self.folder / f"{name}.log"
        self.files.append(path)
        return path.open("wb")

    def lines(self) -> int:
        return sum(p.read_bytes().count(b"\n") for p in self.files if p.exists())

    def tracebacks(self) -> int:
        return sum(p.read_bytes().count(b"Traceback") for p in self.files if p.exists())


class Load:
    """Two senders posting fixed batches; on 503 they wait (Retry-After, at most 1 s) and resend."""

    def __init__(self, url: str, token: str, total: int, rate: float) -> None:
        self.url, self.token, self.total, self.rate = url, token, total, rate
        self.accepted: set[str] = set()
        self.status: dict[int, int] = {}
        self.transport_errors = 0
        self.last_202 = 0.0
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def _send(self, batches: list[list[dict[str, Any]]]) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "content-type": "application/json"}
        pace = PER_REQUEST / (self.rate / 2)
        with httpx.Client(base_url=self.url, timeout=60, headers=headers) as c:
            for batch in batches:
                body = orjson.dumps({"events": batch})
                started = time.monotonic()
                while True:
                    try:
                        r = c.post("/api/v1/events", content=body)
                    except httpx.HTTPError:
                        with self.lock:
                            self.transport_errors += 1
                        time.sleep(0.5)
                        continue
                    with self.lock:
                        self.status[r.status_code] = self.status.get(r.status_code, 0) + 1
                    if r.status_code == 202:
                        with self.lock:
                            self.accepted.update(e["id"] for e in batch)
                            self.last_202 = time.monotonic()
                        break
                    if r.status_code == 503:
                        time.sleep(min(float(r.headers.get("Retry-After", "1")), 1.0))
                        continue
                    break  # any other answer is counted and the batch given up (it would be a bug)
                time.sleep(max(0.0, pace - (time.monotonic() - started)))

    def start(self) -> None:
        events = [_flow(i) for i in range(self.total)]
        batches = [events[s : s + PER_REQUEST] for s in range(0, len(events), PER_REQUEST)]
        self.threads = [threading.Thread(target=self._send, args=(batches[k::2],)) for k in range(2)]
        for t in self.threads:
            t.start()

    def running(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def first_202_after(self, since: float, timeout: float = 120) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.last_202 > since:
                return self.last_202 - since
            if not self.running():
                return None
            time.sleep(0.05)
        return None


def _wait(pred: Callable[[], bool], timeout: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if pred():
            return time.monotonic() - start
        time.sleep(0.1)
    return None


def run_outage(
    pg_url: str,
    events: int,
    outage_s: float,
    rate: float,
    free_port: Callable[[], int],
    wait_http: Callable[[str, subprocess.Popen[bytes]], None],
    stop_all: Callable[[list[subprocess.Popen[bytes]]], None],
) -> None:
    """Run the scenario and print its figures (the process helpers come from benchmarks/service.py)."""
    tmp = Path(tempfile.mkdtemp(prefix="healthsec-outage-"))
    nats_port = free_port()
    nats = subprocess.Popen(
        [
            shutil.which("nats-server") or "/usr/sbin/nats-server",
            "-a",
            "127.0.0.1",
            "-p",
            str(nats_port),
            "-js",
            "-sd",
            str(tmp / "js"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pg_parts = urlsplit(pg_url)
    pg_proxy = CuttableProxy(pg_parts.hostname or "127.0.0.1", pg_parts.port or 5432).start()
    bus_proxy = CuttableProxy("127.0.0.1", nats_port).start()
    db = _through(pg_proxy, pg_url)
    org = f"outage-{uuid.uuid4().hex[:8]}"
    store = Store.open(pg_url, org)
    auth = AuthStore(store.engine)
    auth.create_org(org)
    _, token = auth.create_token(org, "sensor", "outage-bench")
    logs = Logs(tmp)
    port = free_port()
    env = {
        **os.environ,
        "HEALTHSEC_DB": db,
        "HEALTHSEC_BUS": "nats",
        "HEALTHSEC_NATS_URL": f"nats://127.0.0.1:{bus_proxy.port}",
        "HEALTHSEC_LOG_LEVEL": "WARNING",
    }
    cli = [sys.executable, "-m", "healthsec.cli"]
    procs: list[subprocess.Popen[bytes]] = []

    def start_worker(name: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([*cli, "worker"], env=env, stdout=logs.open(name), stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    try:
        api = subprocess.Popen(
            [*cli, "serve", "--port", str(port)], env=env, stdout=logs.open("api"), stderr=subprocess.STDOUT
        )
        procs.append(api)
        workers = [start_worker("worker1"), start_worker("worker2")]
        url = f"http://127.0.0.1:{port}"
        wait_http(url, api)
        for name in ("worker1", "worker2"):  # each prints its first line once its detectors are loaded
            _wait(lambda n=name: b"worker on" in (tmp / f"{n}.log").read_bytes(), 300)
        load = Load(url, token, events, rate)
        print(f"load: {events} synthetic flows, {PER_REQUEST} per request, 2 senders, about {rate:.0f}/s")
        load.start()
        time.sleep(5)
        rows: list[tuple[str, Any, Any, int]] = []
        # a worker killed holding messages it never acked: they go to the other worker after the ack wait
        before = logs.lines()
        kill = kill_holding(workers[0], load, store)
        rows.append(("worker SIGKILL", None, kill.taken, logs.lines() - before))
        start_worker("worker3")
        time.sleep(3)
        for what, proxy in (("broker", bus_proxy), ("database", pg_proxy)):
            before = logs.lines()
            proxy.cut()
            time.sleep(outage_s)
            proxy.restore()
            back = time.monotonic()
            ingest = load.first_202_after(back)
            stored_at_back = store.events.count()
            storing = _wait(lambda s=stored_at_back: store.events.count() > s, 120)
            time.sleep(2)
            rows.append((what, ingest, storing, logs.lines() - before))
            time.sleep(3)
        while load.running():
            time.sleep(0.2)
        _wait(lambda: store.events.count() >= len(load.accepted), 300)
        stored = _stored_ids(store)
        total_rows = store.events.count()  # rows: (org, id) is the key, so duplicates cannot be rows
        lost = len(load.accepted - stored)
        dup = total_rows - len(stored)
        other_5xx = sum(n for code, n in load.status.items() if code >= 500 and code != 503)
        print(f"\n{'outage':<16} {'ingest back after':>18} {'storing again after':>20} {'log lines':>10}")
        for what, ingest, storing, lines in rows:
            i = f"{ingest:.2f} s" if ingest is not None else "—"
            s = f"{storing:.2f} s" if storing is not None else "**never**"
            print(f"{what:<16} {i:>18} {s:>20} {lines:>10}")
        print(
            f"\nevents sent {events}, accepted {len(load.accepted)}, stored {len(stored)}, lost {lost}, "
            f"duplicated {dup}; answers {dict(sorted(load.status.items()))}, 5xx other than 503: "
            f"{other_5xx}; connection errors {load.transport_errors}; tracebacks in logs {logs.tracebacks()}"
        )
        print(kill.report())
    finally:
        stop_all(procs)
        nats.kill()
        pg_proxy.stop()
        bus_proxy.stop()
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)


class KillResult(NamedTuple):
    held: int  # events the killed worker had fetched and not acknowledged
    taken: float | None  # seconds from the kill until another worker had stored them all
    attempts: int

    def report(self) -> str:
        if not self.held:
            return (
                f"worker-kill recovery not caught (MISSED): the worker held no unacknowledged message "
                f"in {self.attempts} attempts"
            )
        took = f"{self.taken:.2f} s" if self.taken is not None else "**never** (within 180 s)"
        return (
            f"worker SIGKILL: it held {self.held} events it had fetched and not acknowledged; another worker "
            f"had stored them all {took} after the kill (redelivery after worker_ack_wait_s, counted "
            f"from delivery; the worker was stopped with SIGSTOP {HOLD_S:.1f} s before the kill so that it "
            "fetched and could not finish)"
        )


HOLD_S = 1.5  # longer than a fetch's 1 s expiry: the stopped worker's last pull has been served


def kill_holding(worker: subprocess.Popen[bytes], load: Load, store: Store, attempts: int = 5) -> KillResult:
    """SIGSTOP the worker while events arrive, so it fetches messages it cannot finish, then SIGKILL it and
    time until every event it held is stored by another worker. A kill at a random moment mostly lands
    between batches (nothing held: the figure would be empty), which is what the old run reported."""
    for attempt in range(1, attempts + 1):
        worker.send_signal(signal.SIGSTOP)
        time.sleep(HOLD_S)
        accepted = set(load.accepted)
        pending = accepted - _stored_ids(store)
        time.sleep(2.0)  # the live worker stores its own share meanwhile; what is left is held
        held = pending - _stored_ids(store)
        if held or attempt == attempts:
            worker.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            worker.wait()
            if not held:
                return KillResult(0, None, attempt)
            done = _wait(lambda h=held: h <= _stored_ids(store), 180)
            return KillResult(len(held), None if done is None else time.monotonic() - killed, attempt)
        worker.send_signal(signal.SIGCONT)
        time.sleep(1.0)
    return KillResult(0, None, attempts)


def _stored_ids(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT id FROM events WHERE org = %(org)s", {"org": store.org})
        return {r[0] for r in rows}
