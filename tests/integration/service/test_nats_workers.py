"""NATS JetStream on the real broker: worker kill/restart, broker restart, dead letters, API to worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_helpers import PORT_SPEC, flow, make_tenant

from healthsec.api import create_app
from healthsec.bus.envelope import EventBatch, encode_batch
from healthsec.bus.metrics import ServiceMetrics
from healthsec.bus.nats import NatsConfig, connect, consumer_lag, dead_letters, publish
from healthsec.bus.worker import Worker
from healthsec.config import load_settings
from healthsec.pipeline import Detection
from healthsec.store import Store, StoreError
from healthsec.store.auth import AuthStore

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

PG_URL = os.environ.get("HEALTHSEC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
NATS_CMD = [
    "start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/nats-server", "--",
    "-a", "127.0.0.1", "-p", "4222", "-js", "-sd", "/var/lib/nats-server", "-l", "/var/log/nats-server.log",
]  # fmt: skip
HERE = Path(__file__).parent


def _nats_up() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 4222)) == 0


def _ensure_nats() -> None:
    if not _nats_up():
        subprocess.run(NATS_CMD, check=False)
    for _ in range(100):
        if _nats_up():
            return
        time.sleep(0.1)
    raise AssertionError("NATS did not come back on 127.0.0.1:4222")


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def cfg() -> Iterator[NatsConfig]:
    """Unique stream, subjects and consumer for this test; deleted afterwards."""
    _ensure_nats()
    tag = uuid.uuid4().hex[:10]
    c = NatsConfig(
        stream=f"T_{tag}", prefix=f"t{tag}", durable=f"w{tag}", max_attempts=2, ack_wait=2.0, fetch=1
    )
    yield c

    async def cleanup() -> None:
        nc, js = await connect(c)
        for name in (c.stream, c.dead_letter_stream):
            with contextlib.suppress(Exception):  # already gone
                await js.delete_stream(name)
        await nc.close()

    _ensure_nats()
    asyncio.run(cleanup())


@pytest.fixture
def pg() -> Iterator[Store]:
    try:
        s = Store.open(PG_URL, f"t-{uuid.uuid4().hex[:12]}")
    except StoreError as exc:
        pytest.fail(f"PostgreSQL is required: {exc}")
    AuthStore(s.engine).create_org(s.org)  # workers take envelopes for registered organisations only
    yield s
    s.close()


def _publish_batches(
    c: NatsConfig, org: str, batches: int, per: int, prefix: str = "f", pause: float = 0.0
) -> list[str]:
    async def go() -> list[str]:
        nc, js = await connect(c)
        ids: list[str] = []
        for b in range(batches):
            events = [flow(b * per + i, prefix) for i in range(per)]
            ids += [e["id"] for e in events]
            batch = EventBatch(org=org, events=events)
            await publish(js, c, encode_batch(batch), batch.msg_id)
            if pause:
                await asyncio.sleep(pause)
        await nc.close()
        return ids

    return asyncio.run(go())


def _start_worker(c: NatsConfig) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HEALTHSEC_DB": PG_URL,
        "HEALTHSEC_NATS_STREAM": c.stream,
        "HEALTHSEC_NATS_SUBJECT": c.prefix,
        "HEALTHSEC_NATS_DURABLE": c.durable,
        "HEALTHSEC_WORKER_FETCH": str(c.fetch),
        "HEALTHSEC_WORKER_ACK_WAIT_S": str(c.ack_wait),
        "HEALTHSEC_DETECTORS": json.dumps(["test.dicom-port"]),
        "HEALTHSEC_DETECTOR_PLUGINS": json.dumps(["service_helpers:PORT_SPEC"]),
        "HEALTHSEC_DETECTION_LEASE_S": "5",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "healthsec.cli", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _stop(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return (proc.stdout.read() if proc.stdout else b"").decode(errors="replace")


def _detection(store: Store, metrics: ServiceMetrics | None = None) -> Detection:
    settings = load_settings(db=PG_URL, detectors=("test.dicom-port",))
    return Detection(store, settings, owner="test-worker", metrics=metrics, specs=[PORT_SPEC])


def _lag(c: NatsConfig) -> int | None:
    async def go() -> int | None:
        nc, js = await connect(c)
        try:
            return await consumer_lag(js, c)
        finally:
            await nc.close()

    return asyncio.run(go())


def _assert_exactly(store: Store, ids: list[str]) -> None:
    stored = [e.id for e in store.events.iter()]
    assert len(stored) == len(ids), f"{len(stored)} stored for {len(ids)} sent"
    assert sorted(stored) == sorted(ids)
    # one alert per flow to port 104 (every tenth), each exactly once; detection runs once the queue is
    # drained and quiet (and after the lease of a killed worker expires)
    expected = sum(1 for i in ids if int(i.rsplit("-", 1)[1]) % 10 == 0)
    _wait(lambda: store.alerts.count() >= expected, 90, "detection of every stored event")
    assert store.alerts.count() == expected


def test_worker_killed_mid_stream_loses_and_duplicates_nothing(cfg: NatsConfig, pg: Store) -> None:
    ids = _publish_batches(cfg, pg.org, batches=120, per=100)
    first = _start_worker(cfg)
    others: list[subprocess.Popen[bytes]] = []
    try:
        _wait(lambda: pg.events.count() > 0, 60, "the first worker to write")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        at_kill = pg.events.count()
        assert 0 < at_kill < len(ids), "the kill must land mid-stream"
        others = [_start_worker(cfg), _start_worker(cfg)]  # two workers share the queue after the restart
        _wait(lambda: pg.events.count() >= len(ids), 120, "all events after the restart")
        _wait(lambda: _lag(cfg) == 0, 30, "the queue to drain")
        time.sleep(cfg.ack_wait + 0.5)  # a redelivery after ack_wait would show up as a duplicate now
        _assert_exactly(pg, ids)
    finally:
        logs = [_stop(p) for p in [first, *others]]
    assert all("Traceback" not in log for log in logs[1:]), logs


def test_broker_restart_during_ingestion(cfg: NatsConfig, pg: Store) -> None:
    worker = _start_worker(cfg)
    restarted = threading.Event()

    def restart_broker() -> None:
        try:
            time.sleep(1.0)
            subprocess.run(
                ["start-stop-daemon", "--stop", "--exec", "/usr/sbin/nats-server", "--retry", "10"],
                check=False,
            )
            time.sleep(0.5)
        finally:
            _ensure_nats()
            restarted.set()

    try:
        _wait(lambda: _nats_up(), 10, "NATS")
        thread = threading.Thread(target=restart_broker)
        thread.start()
        # publishing takes over 4 s, the broker goes down after 1 s: the restart lands mid-ingestion
        ids = _publish_batches(cfg, pg.org, batches=80, per=50, pause=0.05)
        assert restarted.is_set(), "the broker restart must complete while publishing"
        thread.join()
        _wait(lambda: pg.events.count() >= len(ids), 120, "all events after the broker restart")
        _wait(lambda: _lag(cfg) == 0, 30, "the queue to drain")
        _assert_exactly(pg, ids)
    finally:
        _ensure_nats()
        log = _stop(worker)
    assert "stopped after" in log, log


def test_poison_messages_go_to_dead_letter_and_never_block(cfg: NatsConfig, pg: Store) -> None:
    too_long = {**flow(2, "p"), "source": "s" * 200}  # PostgreSQL refuses it (String(128)) on every attempt

    async def go() -> tuple[list[dict[str, object]], int, int]:
        nc, js = await connect(cfg)
        await publish(js, cfg, b"\x00 not json", "poison-1")
        bad_event = EventBatch(org=pg.org, events=[flow(1, "p"), {"kind": "flow", "id": "p-x"}])
        await publish(js, cfg, encode_batch(bad_event), bad_event.msg_id)
        failing = EventBatch(org=pg.org, events=[too_long])
        await publish(js, cfg, encode_batch(failing), failing.msg_id)
        stranger = EventBatch(org="no-such-org", events=[flow(3, "p")])
        await publish(js, cfg, encode_batch(stranger), stranger.msg_id)
        good = EventBatch(org=pg.org, events=[flow(i, "g") for i in range(20)])
        await publish(js, cfg, encode_batch(good), good.msg_id)
        metrics = ServiceMetrics("worker")
        worker = Worker(_detection(pg, metrics), cfg, metrics)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            if len(await dead_letters(js, cfg)) >= 4 and await consumer_lag(js, cfg) == 0:
                break
        stop.set()
        await asyncio.wait_for(task, 10)
        dead = await dead_letters(js, cfg)
        dl_count = int(metrics.dead_letters.labels("worker")._value.get())
        await nc.close()
        return dead, dl_count, worker.processed_messages

    dead, dl_count, processed = asyncio.run(go())
    reasons = sorted(str(d["reason"]) for d in dead)
    assert len(dead) == 4
    assert dl_count == 4
    assert processed == 1
    assert reasons[0] == "envelope for an unknown organisation"
    assert reasons[1].startswith("failed 2 times: ")
    assert "too long" in reasons[1]
    assert "event #1 (id 'p-x')" in reasons[2]
    assert "not JSON" in reasons[3]
    assert pg.events.count() == 20  # the good batch after the poison went through
    assert pg.events.get("p-1") is None  # a poisoned batch is not half-written


def test_api_to_nats_to_worker(cfg: NatsConfig, pg: Store) -> None:
    tenant = make_tenant(pg, f"{pg.org}-h")
    settings = load_settings(
        db=PG_URL, bus="nats", nats_stream=cfg.stream, nats_subject=cfg.prefix, nats_durable=cfg.durable
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        status = client.get("/api/v1/status", headers=tenant.headers("auditor")).json()
        assert status["checks"]["bus"] == "ok"
        events = [flow(i, "api") for i in range(1200)]  # three bus messages (500 per message)
        r = client.post("/api/v1/events", json={"events": events}, headers=tenant.headers("sensor"))
        assert r.status_code == 202
        assert r.json() == {"accepted": 1200, "queued": True}
        assert 'healthsec_bus_lag{role="api"} 3.0' in client.get("/metrics").text

    org_store = pg.for_org(tenant.org)

    async def drain() -> None:
        worker = Worker(_detection(pg), cfg)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        deadline = time.monotonic() + 60
        # the worker stores, then detects once the queue is drained and quiet (detection_idle_s)
        while (
            org_store.events.count() < 1200 or org_store.alerts.count() < 120
        ) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(drain())
    _assert_exactly(org_store, [e["id"] for e in events])
