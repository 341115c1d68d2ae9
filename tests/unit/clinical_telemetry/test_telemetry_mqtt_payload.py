"""MQTT payload parsing (no broker): JSON shapes, device from topic, and refused payloads."""

from __future__ import annotations

from datetime import UTC, datetime

from healthsec.ingest.telemetry import device_from_topic, parse_payload
from healthsec.model import DeviceReading, ParseError

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def parse(payload: bytes, topic: str = "hospital/icu/mon-7/telemetry") -> DeviceReading | ParseError:
    return parse_payload(topic, payload, locator="mqtt://h:1", record=3, received=NOW)


def test_topics() -> None:
    assert device_from_topic("hospital/icu/mon-7/telemetry") == "mon-7"
    assert device_from_topic("devices/pump-3") == "pump-3"


def test_shapes() -> None:
    r = parse(b'{"ts": "2024-05-01T10:00:00Z", "metrics": {"heart_rate": 72, "alarm": "off", "spo2": null}}')
    assert isinstance(r, DeviceReading)
    assert r.device_id == "mon-7"
    assert r.metrics == {"heart_rate": 72.0, "alarm": 0.0, "spo2": None}
    assert r.ts == datetime(2024, 5, 1, 10, tzinfo=UTC)
    flat = parse(b'{"device_id": "x", "hr": 70, "ts": 1714557600000}')
    assert isinstance(flat, DeviceReading)
    assert flat.device_id == "x"
    assert flat.metrics == {"hr": 70.0}
    assert flat.ts == datetime(2024, 5, 1, 10, tzinfo=UTC)
    no_ts = parse(b'{"hr": 70}')
    assert isinstance(no_ts, DeviceReading)
    assert no_ts.ts == NOW
    assert parse(b'{"hr": 70}').id == no_ts.id  # same message, same id


def test_refused_payloads_name_topic_and_message() -> None:
    cases = {
        b"\xff\xfe": "not JSON",
        b"[1]": "expected an object",
        b"{}": "no metrics",
        b'{"hr": "fast"}': "not a number",
        b'{"hr": [1]}': "not a number",
        b'{"hr": 1, "ts": "yesterday"}': "Invalid isoformat",
        b'{"hr": 1, "ts": "2024-01-01T00:00:00"}': "time zone",
        b'{"hr": "inf"}': "non-finite",
    }
    for payload, reason in cases.items():
        err = parse(payload)
        assert isinstance(err, ParseError), payload
        assert reason in err.reason, (payload, err.reason)
        assert err.locator == "mqtt://h:1/hospital/icu/mon-7/telemetry"
        assert err.record == 3


def test_retained_reading_without_time_keeps_its_id_across_subscriptions() -> None:
    """Regression (conformance kit): the broker re-sends a retained message on every subscription; with
    no time of its own it was a new event at each restart (id from the time of receipt)."""
    later = datetime(2024, 5, 2, 8, tzinfo=UTC)
    first = parse_payload("d/mon-1", b'{"hr": 70}', locator="m", record=1, received=NOW, retained=True)
    again = parse_payload("d/mon-1", b'{"hr": 70}', locator="m", record=1, received=later, retained=True)
    assert isinstance(first, DeviceReading) and isinstance(again, DeviceReading)
    assert first.id == again.id
    live = parse_payload("d/mon-1", b'{"hr": 70}', locator="m", record=2, received=later)
    assert isinstance(live, DeviceReading) and live.id != first.id  # a live reading at another time is new
    timed = b'{"hr": 70, "ts": "2024-05-01T10:00:00Z"}'
    kept = parse_payload("d/mon-1", timed, locator="m", record=1, received=NOW, retained=True)
    live_timed = parse_payload("d/mon-1", timed, locator="m", record=1, received=later)
    assert isinstance(kept, DeviceReading) and isinstance(live_timed, DeviceReading)
    assert kept.id == live_timed.id  # a reading with its own time: the same id however it arrives
