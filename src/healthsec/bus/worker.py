"""The NATS work-queue worker: decode, store through the pipeline, and advance detection when drained."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nats.aio.msg import Msg

from healthsec.bus.envelope import EventBatch, PoisonMessage, decode_batch, verify_envelope
from healthsec.bus.metrics import ServiceMetrics
from healthsec.bus.nats import NatsConfig, broker_watch, close, connect, consume, consumer_lag, dead_letter
from healthsec.model import Event
from healthsec.model.codec import event_from_dict
from healthsec.observability import DependencyWatch

if TYPE_CHECKING:  # the worker is handed the pipeline's Detection by its command (composition)
    from healthsec.pipeline import Detection

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    org: str
    events: list[Event]
    bodies: Sequence[Mapping[str, Any]] | None = None


def decode_events(batch: EventBatch) -> DecodedBatch:
    """Rebuild the events of a batch; a record that cannot be read poisons the message (with its index)."""
    events: list[Event] = []
    for index, body in enumerate(batch.events):
        try:
            events.append(event_from_dict(body))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PoisonMessage(
                f"event #{index} (id {body.get('id')!r}): {type(exc).__name__}: {exc}"
            ) from None
    return DecodedBatch(batch.org, events, batch.events)


def write_batches(detection: Detection, batches: Sequence[DecodedBatch]) -> int:
    """Store decoded batches through the engine's adapter; return how many events were new."""
    return sum(detection.accept(b.org, b.events, b.bodies) for b in batches)


TRANSIENT_DELAY = 5.0


def is_transient(exc: BaseException) -> bool:
    """A lost or refused database connection: retry without counting toward the dead-letter bound.

    Anything else (a value the schema refuses, a detector bug) is a property of the message and is
    retried a bounded number of times, then dead-lettered.
    """
    import psycopg
    from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (OperationalError, InterfaceError, DisconnectionError)):
        return True
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, ConnectionError))


async def heartbeat(msgs: Sequence[Msg], every: float) -> None:
    """Tell the broker the messages are still being worked on (a long batch is not redelivered)."""
    while True:
        await asyncio.sleep(every)
        for msg in msgs:
            try:
                await msg.in_progress()
            except Exception:  # the broker is away: the redelivery after ack_wait is what remains
                log.debug("in-progress heartbeat failed")


@dataclass
class Worker:
    """One member of the JetStream work queue: fetch, process, ack; bounded retries, then dead-letter."""

    detection: Detection
    cfg: NatsConfig
    metrics: ServiceMetrics = field(default_factory=lambda: ServiceMetrics("worker"))
    processed_messages: int = 0
    tick_s: float = 0.5
    refused_messages: int = 0
    _last_message: float = field(default_factory=time.monotonic)
    db_watch: DependencyWatch = field(default_factory=lambda: DependencyWatch("database", log))
    _known_orgs: set[str] = field(default_factory=set)

    def _org_exists(self, org: str) -> bool:
        """Whether ``org`` is a registered organisation (known ones are remembered; unknown re-checked)."""
        if org in self._known_orgs:
            return True
        from healthsec.store.auth import AuthStore

        if AuthStore(self.detection.store.engine).org_exists(org):
            self._known_orgs.add(org)
            return True
        return False

    async def _admit(self, js: Any, msg: Msg) -> EventBatch | None:
        """The batch of a message the API signed for a known organisation; anything else is refused.

        Refusals log the stream sequence only, never a value from the message.
        """
        seq = msg.metadata.sequence.stream
        if not verify_envelope(self.cfg.signing_key, msg.data, msg.headers):
            log.warning("refused an unsigned or forged bus message at stream sequence %s", seq)
            self.metrics.errors.labels("worker", "forged").inc()
            self.refused_messages += 1
            await msg.term()  # not copied to the dead letters: nothing of a forger's is kept
            return None
        try:
            batch = decode_batch(msg.data)
        except PoisonMessage as exc:
            await self._dead_letter(js, msg, f"poison: {exc}")
            return None
        if not await asyncio.to_thread(self._org_exists, batch.org):
            log.warning("refused a bus message for an unknown organisation at stream sequence %s", seq)
            self.metrics.errors.labels("worker", "unknown_org").inc()
            self.refused_messages += 1
            await self._dead_letter(js, msg, "envelope for an unknown organisation")
            return None
        return batch

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; an unreachable broker at start raises BusUnavailable at once,
        and ``stop`` ends the run within a few seconds whatever the state of the broker or database."""
        bus_watch = broker_watch(self.cfg)
        connecting = asyncio.create_task(connect(self.cfg, name="healthsec-worker", watch=bus_watch))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not connecting.done():
            connecting.cancel()
            with contextlib.suppress(BaseException):
                await connecting
            return
        nc, js = connecting.result()
        if self.cfg.signing_key is None:
            log.warning("bus_signing_key_file is not set: envelopes are not verified (loopback NATS only)")
        self.metrics.up.labels("worker", "nats").set(1)

        async def poll_lag() -> None:
            while not stop.is_set():
                lag = await consumer_lag(js, self.cfg)
                if lag is not None:
                    self.metrics.lag.labels("worker").set(lag)
                await asyncio.sleep(2.0)

        async def handle(msgs: Sequence[Msg]) -> None:
            decoded: list[tuple[Msg, DecodedBatch]] = []
            for msg in msgs:
                try:
                    envelope = await self._admit(js, msg)
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    log.warning("store unavailable (%s); message will be redelivered", type(exc).__name__)
                    await msg.nak(delay=TRANSIENT_DELAY)
                    continue
                if envelope is None:
                    continue
                try:
                    batch = decode_events(envelope)
                except PoisonMessage as exc:
                    await self._dead_letter(js, msg, f"poison: {exc}")
                    continue
                self.metrics.events_in.labels("worker", "nats").inc(len(batch.events))
                decoded.append((msg, batch))
            if not decoded:
                return
            beat = asyncio.create_task(heartbeat([m for m, _ in decoded], self.cfg.ack_wait / 3))  # noqa: RUF006 (cancelled below)
            try:
                await store(decoded)
            finally:
                beat.cancel()

        async def store(decoded: list[tuple[Msg, DecodedBatch]]) -> None:
            try:
                await asyncio.to_thread(write_batches, self.detection, [b for _, b in decoded])
            except Exception as exc:
                if is_transient(exc):  # the database is away: wait for it, nothing is poison
                    self.db_watch.lost(exc)
                    self.metrics.errors.labels("worker", "store_unavailable").inc()
                    for msg, _ in decoded:
                        await msg.nak(delay=TRANSIENT_DELAY)
                    return
                # isolate the failing message: retry each alone, so one bad batch never blocks the rest
                log.warning("batch write failed (%s); retrying messages one by one", type(exc).__name__)
                for msg, batch in decoded:
                    await self._one(js, msg, batch)
                return
            self.db_watch.ok()
            for msg, _ in decoded:
                await msg.ack()
            self.processed_messages += len(decoded)
            self._last_message = time.monotonic()

        async def detect() -> None:
            # detection advances only when every published message is stored (the queue is drained),
            # so a bucket is complete when it runs; the last open hour runs after detection_idle_s quiet
            idle_s = self.detection.settings.detection_idle_s
            while not stop.is_set():
                await asyncio.sleep(self.tick_s)
                if await consumer_lag(js, self.cfg) != 0:
                    continue
                final = time.monotonic() - self._last_message >= idle_s
                try:
                    await asyncio.to_thread(self.detection.tick, final=final)
                except Exception as exc:
                    if is_transient(exc):
                        self.db_watch.lost(exc)
                    else:
                        log.exception("detection step failed")
                    self.metrics.errors.labels("worker", "detection").inc()

        lag_task = asyncio.create_task(poll_lag())
        detect_task = asyncio.create_task(detect())
        try:
            await consume(js, self.cfg, handle, stop, watch=bus_watch)
        finally:
            lag_task.cancel()
            detect_task.cancel()
            try:  # the lease lapses by itself if the database is away: do not wait for it
                await asyncio.wait_for(asyncio.to_thread(self.detection.release), timeout=3.0)
            except Exception as exc:
                log.warning("detection lease not released (%s)", type(exc).__name__)
            self.metrics.up.labels("worker", "nats").set(0)
            await close(nc)

    async def _one(self, js: Any, msg: Msg, batch: DecodedBatch) -> None:
        try:
            await asyncio.to_thread(write_batches, self.detection, [batch])
        except Exception as exc:
            if is_transient(exc):
                self.db_watch.lost(exc)
                self.metrics.errors.labels("worker", "store_unavailable").inc()
                await msg.nak(delay=TRANSIENT_DELAY)
                return
            self.metrics.errors.labels("worker", "write").inc()
            attempts = msg.metadata.num_delivered
            if attempts >= self.cfg.max_attempts:
                await self._dead_letter(js, msg, f"failed {attempts} times: {type(exc).__name__}: {exc}")
            else:
                await msg.nak(delay=min(0.5 * 2**attempts, 30.0))
            return
        await msg.ack()
        self.processed_messages += 1

    async def _dead_letter(self, js: Any, msg: Msg, reason: str) -> None:
        # the reason may quote record values, so it goes to the dead-letter headers, not to the log
        log.error("dead-lettering message at stream sequence %s", msg.metadata.sequence.stream)
        self.metrics.dead_letters.labels("worker").inc()
        self.metrics.errors.labels("worker", "dead_letter").inc()
        await dead_letter(js, self.cfg, msg, reason)
