"""The service degrades politely: 503 + Retry-After while the database or broker is away, one log line
when it is lost and one when it is back, and processes that stop on SIGTERM whatever the broker's state.

The database is taken away through a TCP proxy that is cut (never the shared PostgreSQL), the broker is a
nats-server this test starts on a free port and kills (never the shared one on 4222).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from fastapi.testclient import TestClient
from service_helpers import PORT_SPEC, flow, make_tenant

from healthsec.api import create_app
from healthsec.api.ingest import MemorySink
from healthsec.config import load_settings
from healthsec.pipeline import Detection
from healthsec.store import Store, StoreError
from healthsec.testing.faults import CuttableProxy

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

PG_URL = os.environ.get("HEALTHSEC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
HERE = Path(__file__).parent
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _through(proxy: CuttableProxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest.fixture
def pg_proxy() -> Iterator[CuttableProxy]:
    parts = urlsplit(PG_URL)
    proxy = CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    yield proxy
    proxy.stop()


class Broker:
    """A nats-server of this test's own (JetStream, a temporary store directory, a free port)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="healthsec-nats-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", self.dir]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError("nats-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def broker() -> Iterator[Broker]:
    b = Broker()
    b.start()
    yield b
    b.kill()
    shutil.rmtree(b.dir, ignore_errors=True)


def _post(client: TestClient, headers: dict[str, str], tag: str, n: int = 5) -> object:
    events = [flow(i, tag) for i in range(n)]
    return client.post("/api/v1/events", json={"events": events}, headers=headers)


def _dependency_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if "unavailable" in r.getMessage() or "again" in r.getMessage()
    ]


def test_database_outage_answers_503_with_retry_after_and_logs_twice(
    pg_proxy: CuttableProxy, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        store = Store.open(_through(pg_proxy, PG_URL), f"t-{uuid.uuid4().hex[:12]}")
    except StoreError as exc:
        pytest.fail(f"PostgreSQL is required: {exc}")
    tenant = make_tenant(store, f"{store.org}-o")
    settings = load_settings(db="sqlite:///unused.db", retry_after_s=7)
    sink = MemorySink(Detection(store, settings, owner="test-api", role="api", specs=[PORT_SPEC]))
    caplog.set_level(logging.WARNING)
    try:
        with TestClient(
            create_app(settings, store=store, sink=sink), raise_server_exceptions=False
        ) as client:
            sensor, reader = tenant.headers("sensor"), tenant.headers("analyst")
            assert _post(client, sensor, "before").status_code == 202
            pg_proxy.cut()
            answers = [_post(client, sensor, f"during{i}") for i in range(5)]
            answers.append(client.get("/api/v1/alerts", headers=reader))
            assert {r.status_code for r in answers} == {503}, [r.text for r in answers]
            assert all(r.headers["Retry-After"] == "7" for r in answers)
            assert "database unavailable" in answers[0].json()["detail"]
            assert client.get("/healthz").status_code == 503
            pg_proxy.restore()
            deadline = time.monotonic() + 20
            while (r := _post(client, sensor, "after")).status_code != 202 and time.monotonic() < deadline:
                assert r.status_code == 503, r.text  # the pool's dead connections: 503 too, never 500
                time.sleep(0.2)
            assert r.status_code == 202
        org = store.for_org(tenant.org)
        stored = {e.id for e in org.events.iter()}
        assert {f"before-{i}" for i in range(5)} | {f"after-{i}" for i in range(5)} <= stored
    finally:
        store.close()
    lines = _dependency_lines(caplog)
    assert lines == [lines[0], lines[1]] and "database unavailable" in lines[0] and "again" in lines[1], lines
    assert not [r for r in caplog.records if r.exc_info or r.exc_text], "no traceback for an expected outage"


def test_broker_outage_answers_503_after_the_publish_deadline(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        store = Store.open(PG_URL, f"t-{uuid.uuid4().hex[:12]}")
    except StoreError as exc:
        pytest.fail(f"PostgreSQL is required: {exc}")
    tenant = make_tenant(store, f"{store.org}-n")
    settings = load_settings(
        db=PG_URL, bus="nats", nats_url=broker.url, bus_publish_deadline_s=1.0, retry_after_s=3
    )
    caplog.set_level(logging.WARNING)
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            sensor = tenant.headers("sensor")
            assert _post(client, sensor, "b").status_code == 202
            broker.kill()
            r = _post(client, sensor, "d")
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"] == "3"
            assert (
                client.get("/api/v1/status", headers=tenant.headers("admin")).json()["checks"]["bus"]
                == "reconnecting"
            )
            broker.start()  # same port and store directory: the stream and its messages are back
            deadline = time.monotonic() + 20
            while (r := _post(client, sensor, "d")).status_code != 202 and time.monotonic() < deadline:
                assert r.status_code == 503, r.text
            assert r.status_code == 202
    finally:
        store.close()
    lines = _dependency_lines(caplog)
    assert len(lines) == 2 and "unavailable" in lines[0] and "again" in lines[1], lines
    assert not [r for r in caplog.records if r.exc_info or r.exc_text]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    light = {  # one tiny detector instead of the default profile (the SigmaHQ set takes long to parse)
        "HEALTHSEC_DETECTORS": json.dumps(["test.dicom-port"]),
        "HEALTHSEC_DETECTOR_PLUGINS": json.dumps(["service_helpers:PORT_SPEC"]),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "PYTHONWARNINGS": "ignore",  # the helpers import the test client, which warns on import
    }
    return subprocess.Popen(
        [sys.executable, "-m", "healthsec.cli", *args],
        env={**os.environ, **light, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_worker_with_unreachable_broker_fails_in_one_line(tmp_path: object) -> None:
    env = {"HEALTHSEC_DB": PG_URL, "HEALTHSEC_NATS_CONNECT_TIMEOUT_S": "1"}
    proc = _cli("worker", "--nats-url", f"nats://127.0.0.1:{free_port()}", env=env)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach NATS"), out


def _signal_with_broker_away(proc: subprocess.Popen[str], broker: Broker, sig: int) -> tuple[str, float]:
    """Kill the broker, let the process notice, send ``sig``; return its output and how long it took."""
    broker.kill()
    time.sleep(2.0)  # the process is now reconnecting
    proc.send_signal(sig)
    start = time.monotonic()
    out, _ = proc.communicate(timeout=30)
    return out, time.monotonic() - start


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_worker_stops_on_signal_while_the_broker_is_away(broker: Broker, sig: signal.Signals) -> None:
    tag = uuid.uuid4().hex[:8]
    env = {"HEALTHSEC_DB": PG_URL, "HEALTHSEC_NATS_STREAM": f"O_{tag}", "HEALTHSEC_NATS_SUBJECT": f"o{tag}"}
    proc = _cli("worker", "--nats-url", broker.url, env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "healthsec worker on" in first, first
        time.sleep(1.0)
        out, took = _signal_with_broker_away(proc, broker, sig)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert took < 10, f"stopped after {took:.1f}s"
    assert "worker stopped after" in out
    assert "Traceback" not in out
    assert out.count("unavailable") == 1, out


def test_serve_stops_on_sigterm_while_the_broker_is_away(broker: Broker) -> None:
    import httpx

    tag = uuid.uuid4().hex[:8]
    port = free_port()
    env = {"HEALTHSEC_DB": PG_URL, "HEALTHSEC_NATS_STREAM": f"S_{tag}", "HEALTHSEC_NATS_SUBJECT": f"s{tag}"}
    proc = _cli("serve", "--bus", "nats", "--nats-url", broker.url, "--port", str(port), env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        out, took = _signal_with_broker_away(proc, broker, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    # uvicorn shuts down, then re-raises the signal it caught: an exit by SIGTERM, clean for a service manager
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert took < 10, f"stopped after {took:.1f}s"
    assert "Traceback" not in out, out
