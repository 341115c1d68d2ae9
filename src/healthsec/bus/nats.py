"""NATS JetStream transport: durable stream, work-queue consumers, at-least-once, dead-letter subject."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoServersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NoStreamResponseError, NotFoundError

log = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[Msg]], Awaitable[None]]


class BusUnavailable(RuntimeError):
    """The broker did not accept a message within the deadline."""


@dataclass(frozen=True, slots=True)
class NatsConfig:
    """Names and limits of the JetStream objects healthsec uses."""

    url: str = "nats://127.0.0.1:4222"
    stream: str = "HEALTHSEC_EVENTS"
    prefix: str = "healthsec"
    durable: str = "workers"
    max_attempts: int = 5
    ack_wait: float = 30.0
    fetch: int = 16

    @property
    def events_subject(self) -> str:
        return f"{self.prefix}.events"

    @property
    def dead_letter_subject(self) -> str:
        return f"{self.prefix}.dlq.events"

    @property
    def dead_letter_stream(self) -> str:
        return f"{self.stream}_DLQ"


async def connect(cfg: NatsConfig, *, name: str = "healthsec") -> tuple[Client, JetStreamContext]:
    """Connect (reconnecting for ever once connected) and make sure the streams exist."""
    try:
        nc = await nats.connect(
            cfg.url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.25, connect_timeout=5
        )
    except (NoServersError, OSError) as exc:
        raise BusUnavailable(f"cannot reach NATS at {cfg.url}: {exc}") from None
    js = nc.jetstream(timeout=5)
    await ensure_streams(js, cfg)
    return nc, js


async def ensure_streams(js: JetStreamContext, cfg: NatsConfig) -> None:
    """The work-queue stream (file storage, 2-minute de-duplication window) and the dead-letter stream."""
    work = StreamConfig(
        name=cfg.stream,
        subjects=[cfg.events_subject],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=120.0,
        max_msg_size=8 * 1024 * 1024,
    )
    dead = StreamConfig(
        name=cfg.dead_letter_stream,
        subjects=[cfg.dead_letter_subject],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=30 * 24 * 3600.0,
    )
    for conf in (work, dead):
        try:
            await js.stream_info(str(conf.name))
        except NotFoundError:
            await js.add_stream(conf)


async def publish(
    js: JetStreamContext, cfg: NatsConfig, payload: bytes, msg_id: str, *, deadline: float = 30.0
) -> int:
    """Publish one message and wait for the broker's ack, retrying while it restarts; return the sequence.

    The ``Nats-Msg-Id`` header makes a retry after a lost ack a no-op inside the duplicate window.
    """
    give_up = time.monotonic() + deadline
    delay = 0.05
    while True:
        try:
            ack = await js.publish(cfg.events_subject, payload, headers={"Nats-Msg-Id": msg_id}, timeout=2.0)
            return int(ack.seq)
        except (TimeoutError, NatsTimeoutError, NoStreamResponseError, ConnectionError) as exc:
            if time.monotonic() > give_up:
                raise BusUnavailable(
                    f"NATS did not accept the message within {deadline:.0f}s: {exc}"
                ) from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


async def dead_letter(js: JetStreamContext, cfg: NatsConfig, msg: Msg, reason: str) -> None:
    """Copy a message to the dead-letter subject with its reason, then stop its redelivery."""
    meta = msg.metadata
    headers = {
        "Healthsec-Reason": reason[:500].replace("\r", " ").replace("\n", " "),
        "Healthsec-Stream-Seq": str(meta.sequence.stream),
        "Healthsec-Deliveries": str(meta.num_delivered),
        "Nats-Msg-Id": f"dlq-{meta.sequence.stream}",
    }
    await js.publish(cfg.dead_letter_subject, msg.data, headers=headers, timeout=5.0)
    await msg.term()


async def consumer_lag(js: JetStreamContext, cfg: NatsConfig) -> int | None:
    """Messages waiting for the workers (all the stream holds before any worker has joined)."""
    try:
        info = await js.consumer_info(cfg.stream, cfg.durable)
    except NotFoundError:
        try:
            return int((await js.stream_info(cfg.stream)).state.messages)
        except (TimeoutError, NotFoundError, NatsTimeoutError):
            return None
    except (TimeoutError, NatsTimeoutError):
        return None
    return int(info.num_pending or 0) + int(info.num_ack_pending or 0)


async def dead_letters(js: JetStreamContext, cfg: NatsConfig, limit: int = 100) -> list[dict[str, Any]]:
    """Read (without consuming) up to ``limit`` dead-lettered messages: reason, deliveries, size."""
    out: list[dict[str, Any]] = []
    try:
        info = await js.stream_info(cfg.dead_letter_stream)
    except NotFoundError:
        return out
    first, last = int(info.state.first_seq), int(info.state.last_seq)
    for seq in range(first, min(last, first + limit - 1) + 1):
        try:
            raw = await js.get_msg(cfg.dead_letter_stream, seq)
        except NotFoundError:
            continue
        headers = raw.headers or {}
        out.append(
            {
                "seq": seq,
                "reason": headers.get("Healthsec-Reason"),
                "deliveries": headers.get("Healthsec-Deliveries"),
                "bytes": len(raw.data or b""),
            }
        )
    return out


async def consume(
    js: JetStreamContext,
    cfg: NatsConfig,
    handle: BatchHandler,
    stop: asyncio.Event,
) -> None:
    """Pull messages as one member of the durable work queue until ``stop`` is set.

    ``handle`` gets the fetched messages and must ack, nak or dead-letter each one; a message it leaves
    unacknowledged is redelivered after ``ack_wait`` (to this or another worker): at-least-once.
    """
    config = ConsumerConfig(
        durable_name=cfg.durable,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=cfg.ack_wait,
        max_deliver=-1,  # bounded by our own dead-lettering so the reason is kept
        max_ack_pending=max(cfg.fetch * 8, 64),
        filter_subject=cfg.events_subject,
    )
    sub = await js.pull_subscribe(cfg.events_subject, durable=cfg.durable, stream=cfg.stream, config=config)
    try:
        while not stop.is_set():
            try:
                msgs = await sub.fetch(cfg.fetch, timeout=1.0)
            except (TimeoutError, NatsTimeoutError):
                continue
            except (ConnectionError, NoStreamResponseError) as exc:  # broker restarting: wait and retry
                log.warning("fetch failed, retrying: %s", exc)
                await asyncio.sleep(0.5)
                continue
            if msgs:
                await handle(msgs)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
