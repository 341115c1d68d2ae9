"""``healthsec listen hl7|dicom|mqtt``: a listener in the foreground feeds the service's ingestion.

The listener (with the options only the foreground command has: proxy mode, upstream, topics…) hands
every event to :class:`~healthsec.api.live.LiveSources`, the buffer that ``healthsec serve`` uses for
its configured sources, and from there to the same sink: with ``bus = "nats"`` the JetStream stream that
``healthsec worker`` consumes, otherwise the in-process :class:`~healthsec.pipeline.Detection` over the
store. Either way the one engine detects (registry and default profile, learning period, stored
baselines, ATT&CK enrichment, correlation, playbooks); no detector runs inside the listener, except the
HL7 proxy's ``--block-at`` policy, which must answer before a message is forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from healthsec.model import Alert, Event, ParseError


class LiveIngest:
    """One foreground listener's way into the service (see the module docstring)."""

    def __init__(self, db: str | None, *, keep: bool = True) -> None:
        from healthsec.app import open_store
        from healthsec.config import load_settings

        self.settings = load_settings()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if not keep:  # --no-store: detect in a scratch database, discarded at exit
            self._tmp = tempfile.TemporaryDirectory(prefix="healthsec-listen-")
            db = str(Path(self._tmp.name) / "listen.db")
        self.store = open_store(db, settings=self.settings)
        self.sink: Any = None
        self.live: Any = None
        self._nats: Any = None
        self._idle: asyncio.Task[None] | None = None
        from healthsec.store.triage import alert_queries

        self._alerts = alert_queries(self.store)
        self._seen = self._alerts.last_stored()  # shown from here on, in the order they are stored

    async def start(self) -> None:
        """Build the sink ``serve`` would build from the same settings, and the live-source buffer."""
        from healthsec.api.app import _flush_when_idle, _owner
        from healthsec.api.ingest import MemorySink, NatsSink
        from healthsec.api.live import LiveSources
        from healthsec.bus.metrics import ServiceMetrics

        metrics = ServiceMetrics("listen")
        if self.settings.bus == "nats":
            from healthsec.app import nats_config
            from healthsec.bus.nats import connect

            cfg = nats_config(self.settings)
            nc, js = await connect(cfg, name="healthsec-listen")
            self._nats = nc
            self.sink = NatsSink(js, cfg)
        else:
            from healthsec.pipeline import Detection
            from healthsec.services.playbooks import on_incidents

            detection = Detection(
                self.store,
                self.settings,
                owner=_owner("listen"),
                metrics=metrics,
                role="listen",
                on_incidents=on_incidents,
            )
            self.sink = MemorySink(detection)
            self._idle = asyncio.create_task(_flush_when_idle(self.sink, self.settings.detection_idle_s))
        self.live = LiveSources(self.settings, self.sink, metrics)

    def attach(self, name: str) -> tuple[Callable[[Event], None], Callable[[ParseError], None]]:
        """Callbacks for the listener: events and input errors go through the live-source checks."""
        assert self.live is not None, "start() first"
        return self.live.attach(name)

    async def bind(self, start: Callable[[], Any], host: str, port: int) -> int:
        """Start the listener (``start`` may be a coroutine function) and return the port it bound; an
        address that cannot be bound (in use, not this host's, no permission) stops the ingestion and is
        one error line naming it, exit code 1."""
        import os

        from healthsec.commands.groups import fail

        try:
            bound = start()
            if asyncio.iscoroutine(bound):
                bound = await bound
        except OSError as exc:
            await self.stop()
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise fail(f"cannot listen on {host}:{port}: {reason}") from None
        return int(bound)

    def begin(self) -> None:
        self.live.start_flusher()

    async def watch(
        self,
        line: Callable[[], str],
        show: Callable[[str], None],
        alert: Callable[[Alert], None],
        *,
        duration: float | None,
        every: float,
        until: asyncio.Future[Any] | None = None,
    ) -> None:
        """Show the status line every ``every`` s and each alert the engine stores, for ``duration`` s
        (``None``: until interrupted) or until ``until`` is done."""
        started = time.monotonic()
        while duration is None or time.monotonic() - started < duration:
            step = min(every, duration or every)
            if until is not None:
                await asyncio.wait({until}, timeout=step)
            else:
                await asyncio.sleep(step)
            show(line())
            for a in self.new_alerts():
                alert(a)
            if until is not None and until.done():
                return

    async def run_until_stopped(
        self,
        line: Callable[[], str],
        stop_source: Callable[[], Any],
        alert: Callable[[Alert], None],
        *,
        duration: float | None,
        every: float,
    ) -> None:
        """Show status and alerts (``watch``) until ``duration`` or an interrupt, then stop the source
        (``stop_source`` may be a coroutine function), hand over what is buffered, show the last alerts
        and the summary line: the shutdown every foreground listener shares."""
        from healthsec.commands.groups import StatusLine, console

        status = StatusLine()
        try:
            await self.watch(line, status.show, alert, duration=duration, every=every)
        finally:
            stopped = stop_source()
            if asyncio.iscoroutine(stopped):
                await stopped
            await self.stop()
            for a in self.new_alerts():
                alert(a)
            console.print(f"stopped: {line()}", highlight=False)

    def new_alerts(self, page: int = 500) -> list[Alert]:
        """Alerts stored since the last call (by the engine here, or by the workers on the bus), each once:
        keyset pages in storing order, so an alert stored late with an earlier time is not missed."""
        from healthsec.model.codec import alert_from_dict

        fresh: list[Alert] = []
        while rows := self._alerts.stored_after(self._seen, limit=page):
            fresh.extend(alert_from_dict(body) for _, body in rows)
            self._seen = rows[-1][0]
            if len(rows) < page:
                break
        return fresh

    async def stop(self) -> None:
        """Hand over what is buffered, detect the open hour (in process), release and close."""
        if self.live is not None:
            await self.live.stop()
        if self._idle is not None:
            self._idle.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._idle
        if self.sink is not None and hasattr(self.sink, "flush"):
            await self.sink.flush()
            self.sink.detection.release()
        if self._nats is not None:
            from healthsec.bus.nats import close

            await close(self._nats)

    def close(self) -> None:
        self.store.close()
        if self._tmp is not None:
            self._tmp.cleanup()
