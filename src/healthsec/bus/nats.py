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

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from healthsec.bus.envelope import SIGNATURE_HEADER, sign_envelope
from healthsec.observability import DependencyWatch

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
    ack_wait: float = 10.0
    fetch: int = 16
    connect_timeout: float = 5.0
    publish_deadline: float = 30.0
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


def broker_watch(cfg: NatsConfig) -> DependencyWatch:
    """The watch that logs one line when this process loses the broker and one when it is back."""
    return DependencyWatch(f"NATS at {cfg.url}", log)


async def connect(
    cfg: NatsConfig, *, name: str = "healthsec", watch: DependencyWatch | None = None
) -> tuple[Client, JetStreamContext]:
    """Connect (reconnecting for ever once connected) and make sure the streams exist.

    The first connection is bounded by ``cfg.connect_timeout``: an unreachable broker raises
    :class:`BusUnavailable` (one line for the operator) instead of retrying for ever. Once connected,
    a lost broker is reported through ``watch`` (one line when lost, one when regained), never as a
    traceback per reconnect attempt.
    """
    watch = watch or broker_watch(cfg)
    last: list[BaseException] = []

    refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_error(exc: Exception) -> None:
        # refused credentials or an untrusted certificate are final: nats-py would retry them for ever
        text = str(exc)
        if isinstance(exc, ssl.SSLError):
            text = f"TLS: {getattr(exc, 'verify_message', None) or exc.reason or type(exc).__name__}"
        if (isinstance(exc, ssl.SSLError) or "authoriz" in text.lower() or "authentic" in text.lower()) and (
            not refused.done()
        ):
            refused.set_result(text)
        last[:] = [exc]
        watch.lost(exc)

    async def on_disconnected() -> None:
        if not (nc.is_closed or nc.is_draining):  # our own shutdown is not an outage
            watch.lost("disconnected")

    async def on_reconnected() -> None:
        watch.ok()

    nc = Client()
    try:
        connecting = asyncio.ensure_future(
            nc.connect(
                cfg.url,
                name=name,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.25,
                connect_timeout=min(2.0, cfg.connect_timeout),
                error_cb=on_error,
                disconnected_cb=on_disconnected,
                reconnected_cb=on_reconnected,
                **cfg.connect_options(),
            )
        )
        await asyncio.wait(
            {connecting, refused}, timeout=cfg.connect_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if not connecting.done():
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connecting
            if refused.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(nc.close(), timeout=1.0)
                raise BusUnavailable(
                    f"NATS at {redact_url(cfg.url)} refused the connection ({refused.result()})"
                )
            raise TimeoutError
        connecting.result()
        js = nc.jetstream(timeout=5)
        await asyncio.wait_for(ensure_streams(js, cfg), timeout=cfg.connect_timeout + 5)
    except (NatsError, OSError, TimeoutError) as exc:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.close(), timeout=1.0)
        cause = last[0] if last and isinstance(exc, TimeoutError) else exc
        reason = f"{type(cause).__name__}: {cause}".rstrip(": ")
        raise BusUnavailable(f"cannot reach NATS at {redact_url(cfg.url)} ({reason})") from None
    watch.down = False
    return nc, js


async def close(nc: Client, timeout: float = 2.0) -> None:
    """Drain the connection, or close it at once when the broker is away (never hang on shutdown)."""
    if nc.is_connected:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.drain(), timeout=timeout)
            return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(nc.close(), timeout=timeout)


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
    js: JetStreamContext,
    cfg: NatsConfig,
    payload: bytes,
    msg_id: str,
    *,
    deadline: float | None = None,
    watch: DependencyWatch | None = None,
) -> int:
    """Publish one message and wait for the broker's ack, retrying while it restarts; return the sequence.

    Retries for ``deadline`` seconds (default ``cfg.publish_deadline``), then raises
    :class:`BusUnavailable`. The ``Nats-Msg-Id`` header makes a retry after a lost ack a no-op inside
    the duplicate window.
    With a signing key the envelope carries its signature, which the workers check.
    """
    limit = cfg.publish_deadline if deadline is None else deadline
    give_up = time.monotonic() + limit
    delay = 0.05
    headers = {"Nats-Msg-Id": msg_id}
    if cfg.signing_key is not None:
        headers[SIGNATURE_HEADER] = sign_envelope(cfg.signing_key, payload)
    while True:
        try:
            ack = await js.publish(cfg.events_subject, payload, headers=headers, timeout=2.0)
        except (TimeoutError, NatsError, ConnectionError) as exc:
            if watch is not None:
                watch.lost(exc)
            if time.monotonic() + delay > give_up:
                raise BusUnavailable(f"NATS did not accept the message within {limit:.0f}s") from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            continue
        if watch is not None:
            watch.ok()
        return int(ack.seq)


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
        except (TimeoutError, NatsError, ConnectionError):
            return None
    except (TimeoutError, NatsError, ConnectionError):  # the broker is away: unknown, not zero
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
    watch: DependencyWatch | None = None,
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
    watch = watch or broker_watch(cfg)
    sub = None
    try:
        while not stop.is_set():
            try:
                if sub is None:
                    sub = await js.pull_subscribe(
                        cfg.events_subject, durable=cfg.durable, stream=cfg.stream, config=config
                    )
                msgs = await sub.fetch(cfg.fetch, timeout=1.0)
            except (TimeoutError, NatsTimeoutError):  # nothing to do (or a broker away: its callbacks say)
                continue
            except (ConnectionError, NatsError) as exc:  # broker away or restarting: wait and retry
                watch.lost(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.5)
                continue
            watch.ok()
            if msgs:
                await handle(msgs)
    finally:
        if sub is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sub.unsubscribe(), timeout=1.0)
