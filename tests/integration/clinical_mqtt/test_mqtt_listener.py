"""A real paho publisher against the local Mosquitto: the subscriber source and `healthsec listen mqtt`."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from healthsec.cli import app
from healthsec.ingest.telemetry import MqttTelemetrySource
from healthsec.model import DeviceReading, ParseError

pytestmark = pytest.mark.integration
HOST, PORT = "127.0.0.1", 1883


def publisher() -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:8]}")
    client.connect(HOST, PORT)
    client.loop_start()
    return client


def test_source_yields_readings_and_survives_bad_messages() -> None:
    topic = f"hstest/{uuid.uuid4().hex}/mon-1/telemetry"
    source = MqttTelemetrySource(HOST, PORT, [topic], max_messages=4, idle_timeout=15)
    out: list[DeviceReading | ParseError] = []
    reader = threading.Thread(target=lambda: out.extend(source.read()))  # type: ignore[arg-type]
    reader.start()
    assert source.subscribed.wait(10)
    pub = publisher()
    try:
        for payload in (
            json.dumps({"ts": "2024-01-01T00:00:00Z", "metrics": {"heart_rate": 72, "spo2": 98}}),
            "{truncated",
            json.dumps({"heart_rate": "fast"}),
            json.dumps({"ts": "2024-01-01T00:00:05Z", "heart_rate": 74}),
        ):
            pub.publish(topic, payload, qos=1).wait_for_publish(5)
        reader.join(20)
    finally:
        pub.loop_stop()
        pub.disconnect()
    assert not reader.is_alive()
    assert [type(i).__name__ for i in out] == ["DeviceReading", "ParseError", "ParseError", "DeviceReading"]
    first, bad = out[0], out[1]
    assert isinstance(first, DeviceReading)
    assert first.device_id == "mon-1"
    assert first.metrics == {"heart_rate": 72.0, "spo2": 98.0}
    assert isinstance(bad, ParseError)
    assert bad.locator == f"mqtt://{HOST}:{PORT}/{topic}"
    assert bad.record == 2


def test_unreachable_broker_is_an_error_not_a_crash() -> None:
    items = list(MqttTelemetrySource(HOST, 1, ["x"], idle_timeout=1).read())
    assert len(items) == 1
    assert isinstance(items[0], ParseError)
    assert "cannot connect" in items[0].reason


def _stored_readings(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("select count(*) from events").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_listen_mqtt_learns_then_alerts_through_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`listen mqtt` hands readings to the service's ingestion: the engine learns the first 144 s of
    event time (learning_hours=0.04), then alerts; a fresh engine given the same readings in the same
    two batches stores exactly the same alerts."""
    from healthsec.config import load_settings
    from healthsec.pipeline import Detection
    from healthsec.store import Store

    monkeypatch.setenv("HEALTHSEC_LEARNING_HOURS", "0.04")
    monkeypatch.setenv("HEALTHSEC_DETECTION_IDLE_S", "0.5")
    monkeypatch.setenv("HEALTHSEC_DETECTORS", '["clinical.telemetry"]')  # no SigmaHQ compile (minutes on CI)
    topic = f"hstest/{uuid.uuid4().hex}/mon-9/telemetry"
    db = tmp_path / "hs.db"
    result: dict[str, object] = {}

    def run() -> None:
        result["r"] = CliRunner().invoke(
            app,
            [
                *("listen", "mqtt", "--topic", topic, "--max-messages", "1000", "--idle-timeout", "4"),
                *("--status-every", "0.5", "--db", str(db)),
            ],
        )

    cli = threading.Thread(target=run)
    cli.start()
    pub = publisher()
    t0 = 1_704_067_200  # 2024-01-01T00:00:00Z
    i = 0

    def send(**metrics: float) -> None:
        nonlocal i
        payload = {"ts": t0 + 5 * i, **metrics}
        pub.publish(topic, json.dumps(payload), qos=1).wait_for_publish(5)
        i += 1

    try:
        # A normal stream past the learning period (messages sent before the listener subscribed are
        # lost, as on a real broker), then quiet so the engine runs it, then the attack.
        deadline = time.monotonic() + 90
        while _stored_readings(db) == 0 and time.monotonic() < deadline:
            send(heart_rate=70 + (i % 7), spo2=97 + (i % 2))
            time.sleep(0.05)
        assert _stored_readings(db) > 0, "the listener never stored a reading"
        while i < 45:
            send(heart_rate=70 + (i % 7), spo2=97 + (i % 2))
        time.sleep(3.0)
        split = datetime.fromtimestamp(t0 + 5 * i, tz=UTC)
        send(heart_rate=350, spo2=97)  # impossible
        for _ in range(3):
            send(heart_rate=72, pulse_rate=140, spo2=97)  # ECG and pulse oximeter disagree
        cli.join(60)
    finally:
        pub.loop_stop()
        pub.disconnect()
    assert not cli.is_alive()
    r = result["r"]
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    assert "ALERT high Physiologically impossible vital sign" in r.output  # type: ignore[attr-defined]
    live = Store.open(str(db))
    try:
        rules = {a.features.get("rule") for a in live.alerts.all()}
        assert {"implausible-vital", "inconsistent-vitals"} <= rules
        readings = sorted(live.events.iter("reading"), key=lambda e: (e.ts, e.id))
        got = {a.id for a in live.alerts.all()}
    finally:
        live.close()
    ref_db = tmp_path / "ref.db"
    ref = Store.open(str(ref_db))
    try:
        engine = Detection(ref, load_settings(db=str(ref_db)), owner="ref")  # the same env settings
        for batch in ([e for e in readings if e.ts < split], [e for e in readings if e.ts >= split]):
            engine.accept(ref.org, batch)
            engine.tick(final=True)
        assert {a.id for a in ref.alerts.all()} == got
    finally:
        ref.close()


def test_listen_mqtt_without_a_broker_fails_in_one_line(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "healthsec.cli",
            "listen",
            "mqtt",
            "--port",
            str(port),
            "--db",
            str(tmp_path / "m.db"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 1, res.stdout + res.stderr
    errors = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"error: MQTT broker mqtt://127.0.0.1:{port}"), (
        res.stderr
    )
    assert "parse errors" not in res.stdout
