"""NATS JetStream transport: durable stream, work-queue consumers, at-least-once, dead-letter subject."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoServersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NoStreamResponseError, NotFoundError

from healthsec.bus.envelope import SIGNATURE_HEADER, sign_envelope

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
    # bus security: credentials and TLS of the connection, the envelope signing key (secrets: no repr)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    nkey_seed_file: str | None = None
    tls_ca_file: str | None = None
    signing_key: bytes | None = field(default=None, repr=False)

    def connect_options(self) -> dict[str, Any]:
        """Authentication and TLS keyword arguments of ``nats.connect``."""
        opts: dict[str, Any] = {}
        if self.user is not None:
            opts.update(user=self.user, password=self.password)
        if self.nkey_seed_file is not None:
            opts["nkeys_seed"] = self.nkey_seed_file
        if self.tls_ca_file is not None or urlsplit(self.url.split(",")[0].strip()).scheme == "tls":
            opts["tls"] = ssl.create_default_context(cafile=self.tls_ca_file)
        return opts

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
        nc = await _connect_authenticated(cfg, name)
    except (NoServersError, OSError) as exc:
        raise BusUnavailable(f"cannot reach NATS at {redact_url(cfg.url)}: {exc}") from None
    js = nc.jetstream(timeout=5)
    await ensure_streams(js, cfg)
    return nc, js


async def _connect_authenticated(cfg: NatsConfig, name: str) -> Client:
    """``nats.connect`` with the configured credentials; refused credentials or certificates fail at once.

    nats-py retries an initial connection for ever when reconnecting is unbounded, also after the
    broker said "Authorization Violation" or its certificate failed verification: those errors are
    caught from the error callback instead.
    """
    refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_error(exc: Exception) -> None:
        text = str(exc)
        if isinstance(exc, ssl.SSLError):  # an untrusted certificate is as final as wrong credentials
            text = f"TLS: {getattr(exc, 'verify_message', None) or exc.reason or type(exc).__name__}"
        elif "authoriz" not in text.lower() and "authentic" not in text.lower():
            log.warning("NATS error: %s", type(exc).__name__)
            return
        if not refused.done():
            refused.set_result(text)

    task: asyncio.Future[Client] = asyncio.ensure_future(
        nats.connect(
            cfg.url,
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            connect_timeout=5,
            error_cb=on_error,
            **cfg.connect_options(),
        )
    )
    pending: set[asyncio.Future[Any]] = {task, refused}
    await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    raise BusUnavailable(f"NATS at {redact_url(cfg.url)} refused the connection ({refused.result()})")


def redact_url(url: str) -> str:
    """A NATS URL without the user:password it may carry."""
    return ",".join(
        part.split("://", 1)[0] + "://" + part.rsplit("@", 1)[1] if "@" in part else part
        for part in url.split(",")
    )


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

    The ``Nats-Msg-Id`` header makes a retry after a lost ack a no-op inside the duplicate window; with a
    signing key the envelope carries its signature, which the workers check.
    """
    give_up = time.monotonic() + deadline
    delay = 0.05
    headers = {"Nats-Msg-Id": msg_id}
    if cfg.signing_key is not None:
        headers[SIGNATURE_HEADER] = sign_envelope(cfg.signing_key, payload)
    while True:
        try:
            ack = await js.publish(cfg.events_subject, payload, headers=headers, timeout=2.0)
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
