"""Parity: `serve` + two workers on PostgreSQL and NATS fed by `healthsec replay` raise the demo's alerts.

Default settings (the default detector profile, a one-day learning period); only the database, the
stream names and the organisation are the test's own. The in-process demo of the same seed runs through
the same engine; the service must reach the same alert ids and the same incidents (set equality).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthsec.demo import run_demo
from healthsec.store import Store
from healthsec.store.auth import AuthStore
from healthsec.store.detection import detection

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]
PG_URL = os.environ.get("HEALTHSEC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SEED = 7


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, str, Store, list[subprocess.Popen[bytes]]]]:
    tag = uuid.uuid4().hex[:8]
    org = f"parity-{tag}"
    store = Store.open(PG_URL, org)
    auth = AuthStore(store.engine)
    auth.create_org(org)
    token = auth.create_token(org, "admin", "replay")[1]
    port = _free_port()
    env = {
        **os.environ,
        "HEALTHSEC_DB": PG_URL,
        "HEALTHSEC_BUS": "nats",
        "HEALTHSEC_NATS_STREAM": f"P_{tag}",
        "HEALTHSEC_NATS_SUBJECT": f"p{tag}",
        "HEALTHSEC_NATS_DURABLE": f"w{tag}",
    }
    cli = [sys.executable, "-m", "healthsec.cli"]
    procs = [
        subprocess.Popen(
            [*cli, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        ),
        *(
            subprocess.Popen([*cli, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(2)
        ),
    ]
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert all(p.poll() is None for p in procs), [p.stdout.read().decode() for p in procs if p.stdout]
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.5)
        yield url, token, store, procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        store.close()


def test_replay_into_the_service_gives_the_demo_alerts_and_incidents(
    service: tuple[str, str, Store, list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    url, token, store, procs = service
    demo = run_demo(SEED, Store.open(str(tmp_path / "demo.db"), "local"))
    expected_alerts = set(demo.result.alerts)
    expected_incidents = {frozenset(i.alert_ids) for i in demo.result.incidents}
    assert len(expected_alerts) > 20

    replay = subprocess.run(
        [
            sys.executable,
            "-m",
            "healthsec.cli",
            "replay",
            "--seed",
            str(SEED),
            "--to",
            url,
            "--token",
            token,
            "--speed",
            "max",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "replayed" in replay.stdout

    # done when every event is stored and detection has run the last hour
    total = len(demo.baseline.events) + len(demo.attack_day.events)
    deadline = time.monotonic() + 400
    while True:
        st = detection(store).get()
        done = (
            store.events.count() == total
            and st.max_ts is not None
            and st.cursor is not None
            and st.cursor > st.max_ts
        )
        if done:
            break
        assert all(p.poll() is None for p in procs), "a service process died"
        assert time.monotonic() < deadline, f"service did not finish: {store.events.count()}/{total}, {st}"
        time.sleep(1.0)

    got_alerts = {a.id for a in store.alerts.list(limit=100_000)}
    assert got_alerts == expected_alerts
    got_incidents = {frozenset(i.alert_ids) for i in store.incidents.list(limit=100_000)}
    assert got_incidents == expected_incidents
