"""Live sources under the API: MQTT telemetry, HL7 MLLP and DICOM listeners feed the store."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import orjson
import paho.mqtt.publish as mqtt_publish
import pytest
from fastapi.testclient import TestClient
from pynetdicom import AE

from healthsec.api import create_app
from healthsec.config import load_settings
from healthsec.ingest.hl7.mllp import frame
from healthsec.store import Store
from healthsec.store.auth import AuthStore

pytestmark = pytest.mark.integration

HL7 = (
    "MSH|^~\\&|LAB|GENERAL|EHR|GENERAL|20261128100000||ADT^A01|MSG{n}|P|2.5\r"
    "PID|1||P{n}^^^GENERAL||DOE^JANE||19800101|F\r"
)


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_live_sources_feed_the_store_and_report_health(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "live.db"), "live")
    topic = f"healthsec-test/{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        db="sqlite:///unused.db",
        org="icu-org",
        mqtt_url="mqtt://127.0.0.1:1883",
        mqtt_topics=(f"{topic}/#",),
        hl7_listen="127.0.0.1:0",
        dicom_listen="127.0.0.1:0",
    )
    org = store.for_org("icu-org")
    auth = AuthStore(store.engine)
    auth.create_org("icu-org")
    _, token = auth.create_token("icu-org", "auditor", "status-reader")
    reader = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings, store=store)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}  # up/down only, no details
        assert client.get("/api/v1/status").status_code == 401  # the details need a token
        health = client.get("/api/v1/status", headers=reader).json()
        live = health["live_sources"]
        assert set(live) == {"mqtt", "hl7", "dicom"}
        # MQTT: two good readings and one malformed message
        _wait(
            lambda: client.get("/api/v1/status", headers=reader).json()["live_sources"]["mqtt"]["up"],
            10,
            "the MQTT subscriber",
        )
        time.sleep(0.5)  # the subscription is acknowledged just after "up"
        # the malformed message names a (fake) patient in its topic and its value: neither may be shown
        for i, payload in enumerate([{"hr": 72, "spo2": 97}, {"hr": 180, "spo2": 85}, "'DOE^JANE MRN0042"]):
            body = (
                payload.encode()
                if isinstance(payload, str)
                else orjson.dumps({**payload, "ts": 1_764_324_000 + i})
            )
            device = "monitor-7" if i < 2 else "DOE-JANE-MRN0042"
            mqtt_publish.single(f"{topic}/{device}/telemetry", body, qos=1, hostname="127.0.0.1", port=1883)
        # HL7 over MLLP: one message, acknowledged
        with socket.create_connection(("127.0.0.1", live["hl7"]["port"]), timeout=5) as sock:
            sock.sendall(frame(HL7.format(n=1)))
            ack = sock.recv(65536)
        assert b"MSA|AA|MSG1" in ack
        # DICOM: a C-ECHO through the monitor
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context("1.2.840.10008.1.1")
        assoc = ae.associate("127.0.0.1", live["dicom"]["port"], ae_title="HEALTHSEC")
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
        assoc.release()

        _wait(lambda: org.events.count("reading") >= 2, 60, "two MQTT readings in the store")
        _wait(lambda: org.events.count("clinical") >= 2, 60, "the HL7 and DICOM events in the store")
        hl7_events = [e for e in org.events.iter("clinical") if e.protocol == "hl7"]  # type: ignore[union-attr]
        assert hl7_events
        assert all("text" not in e.fields for e in hl7_events)  # the raw message (PHI) is never stored
        readings = sorted(org.events.iter("reading"), key=lambda e: e.ts)
        assert [r.metrics["hr"] for r in readings] == [72.0, 180.0]  # type: ignore[union-attr]
        status = client.get("/api/v1/status", headers=reader).json()["live_sources"]
        assert status["mqtt"]["errors"] == 1
        assert status["mqtt"]["last_error"] == "not JSON"
        for route, headers in (("/healthz", {}), ("/api/v1/status", reader), ("/metrics", {})):
            text = client.get(route, headers=headers).text
            assert "JANE" not in text.upper()
            assert "MRN0042" not in text
        metrics = client.get("/metrics").text
        assert 'healthsec_events_in_total{role="api",source="mqtt"} 2.0' in metrics
        assert 'healthsec_errors_total{kind="mqtt_input",role="api"} 1.0' in metrics
        assert 'healthsec_up{component="hl7",role="api"} 1.0' in metrics
        assert 'healthsec_bus_lag{role="live"} 0.0' in metrics  # everything received was handed to the bus
    assert store.for_org("live").events.count() == 0  # live events belong to the configured org only
    store.close()
