"""Event pipeline (decode, store, detect, write alerts) and the NATS work-queue worker that runs it."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
from nats.aio.msg import Msg
from sqlalchemy.dialects import sqlite

from healthsec.bus.envelope import EventBatch, PoisonMessage, decode_batch
from healthsec.bus.metrics import ServiceMetrics
from healthsec.bus.nats import NatsConfig, connect, consume, consumer_lag, dead_letter
from healthsec.detect.base import AlertingDetector
from healthsec.model import Alert, Event
from healthsec.model.codec import event_from_dict, to_dict
from healthsec.store import Store, schema

log = logging.getLogger(__name__)


def load_detectors(paths: Sequence[str]) -> list[AlertingDetector]:
    """Build detectors from ``module:factory`` paths (Settings.detectors); a bad path is a clear error."""
    out: list[AlertingDetector] = []
    for path in paths:
        module_name, _, attr = path.partition(":")
        if not module_name or not attr:
            raise ValueError(f"detector {path!r} is not of the form 'module:factory'")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot load detector {path!r}: {exc}") from None
        out.append(factory())
    return out


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


def insert_events(
    store: Store, events: Sequence[Event], bodies: Sequence[Mapping[str, Any]] | None = None
) -> int:
    """Insert events, skipping ids already stored; return how many were new.

    Written here rather than through ``store.events.add_many`` because that returns the driver's rowcount,
    which is -1 for PostgreSQL multi-row inserts; ``RETURNING`` counts exactly on both backends.
    """
    # ``bodies`` are the dicts the events were decoded from (already canonical: the API wrote them with
    # to_dict); reusing them saves re-serialising every event.
    dicts = bodies if bodies is not None and len(bodies) == len(events) else [to_dict(e) for e in events]
    rows = {
        e.id: {"org": store.org, "id": e.id, "kind": e.kind, "ts": e.ts, "source": e.source, "body": d}
        for e, d in zip(events, dicts, strict=True)
    }
    if not rows:
        return 0
    if store.engine.dialect.name == "postgresql":
        return _copy_events_pg(store, list(rows.values()))
    t = schema.events
    stmt = sqlite.insert(t).on_conflict_do_nothing(index_elements=["org", "id"]).returning(t.c.id)
    new = 0
    values = list(rows.values())
    with store.engine.begin() as conn:
        for start in range(0, len(values), 1000):
            new += len(conn.execute(stmt, values[start : start + 1000]).all())
    return new


def _copy_events_pg(store: Store, rows: list[dict[str, Any]]) -> int:
    """PostgreSQL bulk path: COPY into a temporary table, then one INSERT .. ON CONFLICT DO NOTHING.

    Hand-written because a multi-row INSERT through SQLAlchemy spends most of its time building parameters
    and serialising JSON; COPY with orjson-encoded bodies is several times faster and stays idempotent.
    """
    with store.engine.begin() as conn:
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS healthsec_events_in "
                "(org text, id text, kind text, ts timestamptz, source text, body json) ON COMMIT DELETE ROWS"
            )
            with cur.copy("COPY healthsec_events_in (org, id, kind, ts, source, body) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(
                        (r["org"], r["id"], r["kind"], r["ts"], r["source"], orjson.dumps(r["body"]).decode())
                    )
            cur.execute(
                "INSERT INTO events (org, id, kind, ts, source, body) "
                "SELECT org, id, kind, ts, source, body FROM healthsec_events_in "
                "ON CONFLICT (org, id) DO NOTHING"
            )
            return int(cur.rowcount)


@dataclass
class Pipeline:
    """Store events idempotently, run the detectors over them and store their alerts (idempotent on id)."""

    store: Store
    detectors: Sequence[AlertingDetector] = ()
    metrics: ServiceMetrics | None = None
    role: str = "worker"
    correlate: bool = True
    window: timedelta = timedelta(hours=3)
    _stores: dict[str, Store] = field(default_factory=dict)

    def _org(self, org: str) -> Store:
        if org not in self._stores:
            self._stores[org] = self.store.for_org(org)
        return self._stores[org]

    def write(self, batches: Sequence[DecodedBatch]) -> tuple[int, int]:
        """Process batches; return (new events, new alerts). Safe to repeat: ids make writes idempotent."""
        by_org: dict[str, tuple[list[Event], list[Mapping[str, Any]] | None]] = {}
        for b in batches:
            events, bodies = by_org.setdefault(b.org, ([], []))
            events.extend(b.events)
            if bodies is not None and b.bodies is not None:
                bodies.extend(b.bodies)
            else:
                by_org[b.org] = (events, None)
        new_events = new_alerts = 0
        for org, (events, bodies) in by_org.items():
            store = self._org(org)
            new_events += insert_events(store, events, bodies)
            alerts: list[Alert] = []
            for detector in self.detectors:
                alerts.extend(detector.detect(events))
            if alerts:
                new_alerts += store.alerts.add_many(alerts)
                if self.correlate:
                    self._correlate(store, alerts)
        if self.metrics is not None:
            self.metrics.events_written.labels(self.role).inc(new_events)
            self.metrics.alerts_out.labels(self.role).inc(new_alerts)
        return new_events, new_alerts

    def _correlate(self, store: Store, alerts: Sequence[Alert]) -> None:
        """Re-correlate the stored alerts around the new ones and upsert the incidents that hold them.

        Correlation is order-independent, so any worker recomputing a window from the database reaches
        the same incidents; incident ids are stable, so a repeated upsert is a no-op.
        """
        from healthsec.analyze.correlate import correlate

        start = min(a.ts for a in alerts) - self.window
        end = max(a.ts for a in alerts) + self.window
        nearby = [a for a in store.alerts.list(since=start, limit=50_000) if a.ts <= end]
        new_ids = {a.id for a in alerts}
        incidents = [i for i in correlate(nearby, window=self.window) if new_ids & set(i.alert_ids)]
        if incidents:
            store.incidents.upsert_many(incidents)


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


@dataclass
class Worker:
    """One member of the JetStream work queue: fetch, process, ack; bounded retries, then dead-letter."""

    pipeline: Pipeline
    cfg: NatsConfig
    metrics: ServiceMetrics = field(default_factory=lambda: ServiceMetrics("worker"))
    processed_messages: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        nc, js = await connect(self.cfg, name="healthsec-worker")
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
                    batch = decode_events(decode_batch(msg.data))
                except PoisonMessage as exc:
                    await self._dead_letter(js, msg, f"poison: {exc}")
                    continue
                self.metrics.events_in.labels("worker", "nats").inc(len(batch.events))
                decoded.append((msg, batch))
            if not decoded:
                return
            try:
                await asyncio.to_thread(self.pipeline.write, [b for _, b in decoded])
            except Exception as exc:
                if is_transient(exc):  # the database is away: wait for it, nothing is poison
                    log.warning("store unavailable (%s); messages will be redelivered", type(exc).__name__)
                    self.metrics.errors.labels("worker", "store_unavailable").inc()
                    for msg, _ in decoded:
                        await msg.nak(delay=TRANSIENT_DELAY)
                    return
                # isolate the failing message: retry each alone, so one bad batch never blocks the rest
                log.warning("batch write failed (%s); retrying messages one by one", type(exc).__name__)
                for msg, batch in decoded:
                    await self._one(js, msg, batch)
                return
            for msg, _ in decoded:
                await msg.ack()
            self.processed_messages += len(decoded)

        lag_task = asyncio.create_task(poll_lag())
        try:
            await consume(js, self.cfg, handle, stop)
        finally:
            lag_task.cancel()
            self.metrics.up.labels("worker", "nats").set(0)
            await nc.drain()

    async def _one(self, js: Any, msg: Msg, batch: DecodedBatch) -> None:
        try:
            await asyncio.to_thread(self.pipeline.write, [batch])
        except Exception as exc:
            if is_transient(exc):
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
