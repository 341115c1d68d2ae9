"""IoMT telemetry over MQTT (paho-mqtt): subscribe, turn each JSON message into a DeviceReading."""

from __future__ import annotations

import hashlib
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from healthsec.ingest.telemetry.csv_source import value_of
from healthsec.model import DeviceReading, Event, ParseError, Provenance, parse_utc, stable_id

SOURCE = "mqtt"
_TOPIC_TAILS = {"telemetry", "vitals", "data", "readings", "state"}
_META = {"device_id", "device_type", "ts", "timestamp", "ip", "metrics"}


def device_from_topic(topic: str) -> str:
    """``hospital/icu/monitor-7/telemetry`` -> ``monitor-7``; ``devices/pump-3`` -> ``pump-3``."""
    parts = [p for p in topic.split("/") if p]
    if len(parts) >= 2 and parts[-1].lower() in _TOPIC_TAILS:
        return parts[-2]
    return parts[-1] if parts else topic


def _timestamp(value: Any, received: datetime) -> datetime:
    if value is None:
        return received
    if isinstance(value, bool):
        raise ValueError("timestamp is a boolean")
    if isinstance(value, (int, float)):
        seconds = value / 1000.0 if value > 1e11 else float(value)  # epoch milliseconds or seconds
        return datetime.fromtimestamp(seconds, tz=UTC)
    if isinstance(value, str):
        return parse_utc(value)
    raise ValueError(f"timestamp of type {type(value).__name__}")


def _metric(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return value_of(str(value))
    if isinstance(value, str):
        try:
            return value_of(value)
        except ValueError as exc:
            raise ValueError(f"metric {name!r}: {exc}") from None
    raise ValueError(f"metric {name!r} is a {type(value).__name__}, not a number")


def parse_payload(
    topic: str,
    payload: bytes,
    *,
    locator: str,
    record: int,
    received: datetime | None = None,
    retained: bool = False,
) -> DeviceReading | ParseError:
    """One MQTT message -> reading. JSON object with ``metrics`` (or metrics at top level), optional
    ``device_id`` (else from the topic), ``device_type``, ``ip`` and ``ts`` (ISO-8601 or epoch; else now).

    The id is the topic, the time and the payload's digest. A retained message without a time of its own
    is the broker's copy of one reading, sent again on every subscription: its id leaves out the time of
    receipt, so a restarted source re-reads it as the same event instead of a new one each time."""
    where = f"{locator}/{topic}"
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return ParseError(SOURCE, where, f"not JSON ({exc.msg})", record)
    if not isinstance(obj, Mapping):
        return ParseError(SOURCE, where, f"JSON {type(obj).__name__}, expected an object", record)
    raw_metrics = obj.get("metrics")
    if raw_metrics is None:
        raw_metrics = {k: v for k, v in obj.items() if k not in _META}
    if not isinstance(raw_metrics, Mapping) or not raw_metrics:
        return ParseError(SOURCE, where, "no metrics", record)
    try:
        ts = _timestamp(obj.get("ts", obj.get("timestamp")), received or datetime.now(UTC))
        metrics = {str(k): _metric(str(k), v) for k, v in raw_metrics.items()}
    except (ValueError, OverflowError, OSError) as exc:
        return ParseError(SOURCE, where, str(exc), record)
    device_id = str(obj.get("device_id") or device_from_topic(topic))
    digest = hashlib.sha256(payload).hexdigest()[:16]
    when = "retained" if retained and obj.get("ts", obj.get("timestamp")) is None else ts.isoformat()
    return DeviceReading(
        id=stable_id("rd", SOURCE, topic, when, digest),
        ts=ts,
        source=SOURCE,
        provenance=Provenance(source=SOURCE, locator=where, record=record),
        device_id=device_id,
        device_type=str(obj["device_type"]) if obj.get("device_type") else None,
        metrics=metrics,
        ip=str(obj["ip"]) if obj.get("ip") else None,
    )


class MqttTelemetrySource:
    """Subscribes to ``topics`` and yields readings as they arrive, until ``stop()``, ``max_messages``
    or ``idle_timeout`` seconds without a message. Credentials are optional and never defaulted."""

    def __init__(
        self,
        host: str,
        port: int,
        topics: Sequence[str],
        *,
        qos: int = 1,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        max_messages: int | None = None,
        idle_timeout: float | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.topics = list(topics)
        self.qos = qos
        self.client_id = client_id
        self.username = username
        self.password = password
        self.max_messages = max_messages
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.name = SOURCE
        self.subscribed = threading.Event()
        self._stop = threading.Event()
        self.received = 0

    @property
    def locator(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def stop(self) -> None:
        self._stop.set()

    def read(self) -> Iterator[Event | ParseError]:
        """Connect, subscribe and yield; paho reconnects (and re-subscribes) by itself after a broker drop.
        A source can be read again after a run ends (``healthsec serve`` restarts it)."""
        self.subscribed.clear()
        inbox: queue.Queue[tuple[str, bytes, datetime, bool]] = queue.Queue()
        pending = {"subs": 0}
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id or f"healthsec-{uuid.uuid4().hex[:12]}"
        )
        if self.username is not None:
            client.username_pw_set(self.username, self.password)

        def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if not reason.is_failure:
                c.subscribe([(t, self.qos) for t in self.topics])

        def on_subscribe(_c: mqtt.Client, _u: Any, _mid: int, _codes: Any, _p: Any) -> None:
            pending["subs"] += 1
            self.subscribed.set()

        def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
            inbox.put((msg.topic, bytes(msg.payload), datetime.now(UTC), bool(msg.retain)))

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        try:
            client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            yield ParseError(SOURCE, self.locator, f"cannot connect: {exc}")
            return
        client.loop_start()
        try:
            deadline = time.monotonic() + self.connect_timeout
            while not self.subscribed.wait(0.05):
                if time.monotonic() > deadline or self._stop.is_set():
                    yield ParseError(SOURCE, self.locator, "no subscription acknowledged before the timeout")
                    return
            last = time.monotonic()
            while not self._stop.is_set():
                if self.max_messages is not None and self.received >= self.max_messages:
                    break
                try:
                    topic, payload, when, retained = inbox.get(timeout=0.1)
                except queue.Empty:
                    if self.idle_timeout is not None and time.monotonic() - last > self.idle_timeout:
                        break
                    continue
                last = time.monotonic()
                self.received += 1
                yield parse_payload(
                    topic,
                    payload,
                    locator=self.locator,
                    record=self.received,
                    received=when,
                    retained=retained,
                )
        finally:
            client.disconnect()
            client.loop_stop()
