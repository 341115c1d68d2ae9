"""Live sources under ``healthsec serve``: MQTT telemetry, HL7 MLLP listener, DICOM monitor, to the bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from healthsec.bus.metrics import ServiceMetrics
from healthsec.config import Settings
from healthsec.ingest.base import without_raw_text
from healthsec.model import Event, ParseError
from healthsec.model.limits import event_problems

log = logging.getLogger(__name__)
FLUSH_SECONDS = 0.2
FLUSH_EVENTS = 500


def host_port(text: str, default_port: int) -> tuple[str, int]:
    """``"127.0.0.1:2575"`` → ("127.0.0.1", 2575); a bare host takes ``default_port``."""
    host, _, port = text.rpartition(":") if ":" in text else (text, "", str(default_port))
    return host or "127.0.0.1", int(port)


_QUOTED = re.compile(r"""['"(\[{:=<]""")


def value_free(reason: str) -> str:
    """A parse error's reason without the input it may quote: ``not JSON (unexpected 'Jane')`` →
    ``not JSON``; at most 80 characters, control characters dropped."""
    head = _QUOTED.split(reason, maxsplit=1)[0]
    return "".join(ch for ch in head if ch.isprintable()).strip()[:80] or "malformed record"


@dataclass
class SourceState:
    """What /healthz and /metrics say about one live source."""

    name: str
    up: bool = False
    events: int = 0
    errors: int = 0
    port: int | None = None
    last_error: str | None = None


@dataclass
class LiveSources:
    """Starts the configured listeners; buffers their events and submits them to the sink in batches."""

    settings: Settings
    sink: Any  # healthsec.api.ingest.IngestSink
    metrics: ServiceMetrics
    states: dict[str, SourceState] = field(default_factory=dict)
    _buffer: list[Event] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _closers: list[Any] = field(default_factory=list)

    @property
    def org(self) -> str:
        return self.settings.live_org or self.settings.org

    # -- callbacks from listener threads / tasks -------------------------------------------------
    def _event(self, name: str, event: Event) -> None:
        event = without_raw_text(event)  # the raw HL7 text carries PHI: never stored or published
        problems = event_problems(event)
        if problems:  # refused alone: a poison record never blocks the buffer's batch
            where, why = problems[0]
            self._error(name, ParseError(name, name, f"{'.'.join(map(str, where))}: {why}"))
            return
        with self._lock:
            self._buffer.append(event)
            self.states[name].events += 1
        self.metrics.events_in.labels("api", name).inc()

    def _error(self, name: str, error: ParseError) -> None:
        state = self.states[name]
        state.errors += 1
        # what the operator sees holds no input: no locator (an MQTT topic may name a patient), and the
        # reason only up to its first quote, bracket or colon (parsers quote the offending value there)
        state.last_error = value_free(error.reason)
        self.metrics.errors.labels("api", f"{name}_input").inc()

    def _state(self, name: str) -> SourceState:
        self.states[name] = SourceState(name)
        return self.states[name]

    def attach(self, name: str) -> tuple[Callable[[Event], None], Callable[[ParseError], None]]:
        """Register a source its caller runs (``healthsec listen hl7|dicom|mqtt``, with its own options):
        its events and errors take the same checks, buffer and sink as the configured ones. Call
        :meth:`start_flusher` once the sources are attached."""
        self._state(name).up = True
        return (lambda e: self._event(name, e)), (lambda e: self._error(name, e))

    def start_flusher(self) -> None:
        self._tasks.append(asyncio.create_task(self._flusher()))

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        s = self.settings
        if s.mqtt_url:
            self._start_mqtt(s.mqtt_url, s.mqtt_topics)
        if s.hl7_listen:
            await self._start_hl7(s.hl7_listen)
        if s.dicom_listen:
            self._start_dicom(s.dicom_listen)
        if s.syslog_listen:
            await self._start_udp("syslog", s.syslog_listen, 514)
        if s.netflow_listen:
            await self._start_udp("netflow", s.netflow_listen, 2055)
        if self.states:
            self.start_flusher()

    def _start_mqtt(self, url: str, topics: Sequence[str]) -> None:
        from healthsec.ingest.telemetry.mqtt import MqttTelemetrySource

        state = self._state("mqtt")
        host, port = host_port(url.removeprefix("mqtt://").rstrip("/"), 1883)
        password = None
        if self.settings.mqtt_password_file is not None:
            password = self.settings.mqtt_password_file.read_text(encoding="utf-8").strip()
        source = MqttTelemetrySource(
            host, port, list(topics), username=self.settings.mqtt_username, password=password
        )

        def run() -> None:
            # the subscriber reconnects by being restarted: a dropped broker ends read(), we start again
            while not self._stop.is_set():
                state.up = True
                self.metrics.up.labels("api", "mqtt").set(1)
                for item in source.read():
                    if isinstance(item, ParseError):
                        self._error("mqtt", item)
                    else:
                        self._event("mqtt", item)
                state.up = False
                self.metrics.up.labels("api", "mqtt").set(0)
                self._stop.wait(1.0)

        thread = threading.Thread(target=run, name="healthsec-mqtt", daemon=True)
        thread.start()
        self._closers.append(source.stop)

    async def _start_hl7(self, listen: str) -> None:
        from healthsec.ingest.hl7.listener import HL7Listener

        state = self._state("hl7")
        host, port = host_port(listen, 2575)
        listener = HL7Listener(
            host=host,
            port=port,
            on_event=lambda e: self._event("hl7", e),
            on_error=lambda e: self._error("hl7", e),
        )
        state.port = await listener.start()
        state.up = True
        self.metrics.up.labels("api", "hl7").set(1)
        self._tasks.append(asyncio.create_task(listener.serve_forever()))
        self._closers.append(listener.stop)

    def _start_dicom(self, listen: str) -> None:
        from healthsec.ingest.dicom.guard import GuardLimits
        from healthsec.ingest.dicom.monitor import DicomMonitor

        s = self.settings
        state = self._state("dicom")
        host, port = host_port(listen, 11112)
        monitor = DicomMonitor(
            host=host,
            port=port,
            on_event=lambda e: self._event("dicom", e),
            on_error=lambda e: self._error("dicom", e),
            limits=GuardLimits(
                idle_s=s.dicom_idle_s, per_client=s.dicom_max_per_client, max_pdu_bytes=s.dicom_max_pdu_bytes
            ),
        )
        state.port = monitor.start()
        state.up = True
        self.metrics.up.labels("api", "dicom").set(1)
        self._closers.append(monitor.stop)

    async def _start_udp(self, name: str, listen: str, default_port: int) -> None:
        """The syslog receiver (UDP + TCP) or the NetFlow/IPFIX collector (UDP), docs/siem.md."""
        from healthsec.ingest.siem.listeners import NetflowCollector, SyslogListener

        state = self._state(name)
        host, port = host_port(listen, default_port)
        kind = SyslogListener if name == "syslog" else NetflowCollector
        listener = kind(host, port, lambda e: self._event(name, e), lambda e: self._error(name, e))
        state.port = await listener.start()
        state.up = True
        self.metrics.up.labels("api", name).set(1)
        self._closers.append(listener.stop)

    async def _flusher(self) -> None:
        from healthsec.api.ingest import event_body

        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            with self._lock:
                batch, self._buffer = self._buffer[: FLUSH_EVENTS * 20], self._buffer[FLUSH_EVENTS * 20 :]
                self.metrics.lag.labels("live").set(len(self._buffer))
            if not batch:
                continue
            try:
                await self.sink.submit(self.org, [event_body(e) for e in batch], batch)
            except Exception as exc:  # keep the events and retry on the next tick
                self.metrics.errors.labels("api", "live_submit").inc()
                log.warning("live events not submitted yet (%s); retrying", type(exc).__name__)
                with self._lock:
                    self._buffer[:0] = batch

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for close in self._closers:
            result = close()
            if asyncio.iscoroutine(result):
                await result
        with self._lock:
            rest, self._buffer = self._buffer, []
        if rest:  # flush what arrived before the stop
            from healthsec.api.ingest import event_body

            with contextlib.suppress(Exception):
                await self.sink.submit(self.org, [event_body(e) for e in rest], rest)

    def status(self) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "up": st.up,
                "events": st.events,
                "errors": st.errors,
                "port": st.port,
                "last_error": st.last_error,
            }
            for name, st in self.states.items()
        }
