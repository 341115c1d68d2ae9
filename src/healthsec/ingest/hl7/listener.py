"""MLLP listener over asyncio: a tap that acknowledges, or an inline proxy to an interface engine."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from healthsec.detect.base import AlertingDetector
from healthsec.ingest.hl7.ack import ack_code_of, build_ack
from healthsec.ingest.hl7.mllp import MllpDecoder, frame
from healthsec.ingest.hl7.parse import message_event
from healthsec.model import Alert, ClinicalMessage, Event, ParseError, Severity

Mode = Literal["tap", "proxy"]


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else []


@dataclass
class ListenerStats:
    """Live counts the CLI prints."""

    connections: int = 0
    messages: int = 0
    accepted: int = 0
    errored: int = 0
    rejected: int = 0
    forwarded: int = 0
    upstream_failures: int = 0
    truncated: int = 0
    alerts: int = 0

    def line(self) -> str:
        return (
            f"connections={self.connections} messages={self.messages} AA={self.accepted} "
            f"AE={self.errored} AR={self.rejected} forwarded={self.forwarded} "
            f"upstream_failures={self.upstream_failures} truncated={self.truncated} alerts={self.alerts}"
        )


@dataclass
class HL7Listener:
    """Receives MLLP; every message becomes an event, runs through the detectors, and is acknowledged.

    ``tap``: the listener is the receiver; it answers AA, or AE/AR for malformed or oversized input
    (``send_acks=False`` for a mirrored feed that must stay silent). ``proxy``: valid messages go to
    ``upstream`` and the engine's ACK is relayed back; malformed messages, and with ``block_at`` set
    messages whose alerts reach that severity, are refused with AR/AE and never forwarded.
    """

    host: str = "127.0.0.1"
    port: int = 2575
    mode: Mode = "tap"
    upstream: tuple[str, int] | None = None
    detectors: Sequence[AlertingDetector] = ()
    on_event: Callable[[Event], None] | None = None
    on_alert: Callable[[Alert], None] | None = None
    on_error: Callable[[ParseError], None] | None = None
    block_at: Severity | None = None
    send_acks: bool = True
    max_size: int = 1_048_576
    upstream_timeout: float = 10.0
    idle_timeout: float = 300.0
    name: str = "hl7-mllp"
    stats: ListenerStats = field(default_factory=ListenerStats)
    _server: asyncio.Server | None = None
    _conns: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> int:
        """Bind and start serving; returns the bound port (use ``port=0`` for an ephemeral one)."""
        if self.mode == "proxy" and self.upstream is None:
            raise ValueError("proxy mode needs an upstream host:port")
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Stop accepting, then end open connections (Python 3.11's wait_closed does not wait for them)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        tasks = list(self._conns)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
            task.add_done_callback(self._conns.discard)
        self.stats.connections += 1
        peer = writer.get_extra_info("peername")
        src_ip = str(peer[0]) if peer else None
        local = writer.get_extra_info("sockname")
        dst_ip = str(local[0]) if local else None
        decoder = MllpDecoder(max_size=self.max_size)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        seq = 0
        try:
            while True:
                try:
                    # A peer that stops mid-message (or never sends) is dropped after idle_timeout,
                    # so half-open connections cannot pile up (slowloris).
                    chunk = await asyncio.wait_for(reader.read(65536), self.idle_timeout)
                except (ConnectionError, OSError, TimeoutError):
                    chunk = b""
                if not chunk:
                    break
                for block in decoder.feed(chunk):
                    seq += 1
                    locator = f"{src_ip}:{peer[1] if peer else '?'} conn {self.stats.connections}"
                    reply, upstream = await self._process(block, locator, seq, src_ip, dst_ip, upstream)
                    if reply is not None and self.send_acks:
                        writer.write(frame(reply))
                        await writer.drain()
            if decoder.pending:
                self.stats.truncated += 1
                self._error(
                    ParseError(
                        self.name,
                        f"{src_ip}",
                        f"peer closed the connection inside an MLLP block "
                        f"({decoder.pending} bytes unacknowledged)",
                        seq + 1,
                    )
                )
        except (ConnectionError, OSError) as exc:
            self._error(ParseError(self.name, f"{src_ip}", f"connection failed: {type(exc).__name__}", seq))
        finally:
            if upstream is not None:
                upstream[1].close()
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _process(
        self,
        block: bytes | None,
        locator: str,
        seq: int,
        src_ip: str | None,
        dst_ip: str | None,
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
    ) -> tuple[str | None, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
        now = datetime.now(UTC)
        self.stats.messages += 1
        if block is None:
            text = ""
            event = message_event(
                "",
                source=self.name,
                locator=locator,
                record=seq,
                received=now,
                src_ip=src_ip,
                dst_ip=dst_ip,
                size=self.max_size + 1,
                live=True,
                extra_errors=[f"message larger than {self.max_size} bytes"],
            )
        else:
            text = block.decode("utf-8", "replace")
            event = message_event(
                text,
                source=self.name,
                locator=locator,
                record=seq,
                received=now,
                src_ip=src_ip,
                dst_ip=dst_ip,
                size=len(block),
                live=True,
            )
        reasons = [str(r) for r in _as_list(event.fields.get("errors"))]
        if self.on_event:
            self.on_event(event)
        alerts = self._detect(event)
        if reasons:
            code = "AR" if event.message_type in ("UNPARSEABLE", "UNKNOWN") or block is None else "AE"
            return self._count(build_ack(text or None, code, reasons)), upstream
        if self.block_at is not None and any(a.severity >= self.block_at for a in alerts):
            return self._count(build_ack(text, "AR", ["rejected by security policy"])), upstream
        if self.mode == "tap":
            return self._count(build_ack(text, "AA")), upstream
        return await self._forward(text, locator, seq, upstream)

    async def _forward(
        self,
        text: str,
        locator: str,
        seq: int,
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
    ) -> tuple[str | None, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
        assert self.upstream is not None
        try:
            if upstream is None:
                upstream = await asyncio.wait_for(
                    asyncio.open_connection(*self.upstream), self.upstream_timeout
                )
            up_reader, up_writer = upstream
            up_writer.write(frame(text))
            await up_writer.drain()
            raw = await asyncio.wait_for(up_reader.readuntil(b"\x1c\r"), self.upstream_timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            self.stats.upstream_failures += 1
            if upstream is not None:
                upstream[1].close()
            self._error(
                ParseError(self.name, locator, f"upstream did not acknowledge: {type(exc).__name__}", seq)
            )
            return self._count(build_ack(text, "AE", ["upstream interface engine unavailable"])), None
        self.stats.forwarded += 1
        ack_text = raw[raw.find(b"\x0b") + 1 : -2].decode("utf-8", "replace")
        ack_event = message_event(
            ack_text,
            source=self.name,
            locator=f"{locator} upstream",
            record=seq,
            received=datetime.now(UTC),
            src_ip=self.upstream[0],
            size=len(ack_text),
            live=True,
        )
        if self.on_event:
            self.on_event(ack_event)
        self._detect(ack_event)
        return self._count(ack_text), upstream

    def _count(self, ack: str) -> str:
        code = ack_code_of(ack)
        if code in ("AA", "CA"):
            self.stats.accepted += 1
        elif code in ("AE", "CE"):
            self.stats.errored += 1
        elif code in ("AR", "CR"):
            self.stats.rejected += 1
        return ack

    def _detect(self, event: ClinicalMessage) -> list[Alert]:
        alerts: list[Alert] = []
        for det in self.detectors:
            alerts.extend(det.detect([event]))
        self.stats.alerts += len(alerts)
        if self.on_alert:
            for alert in alerts:
                self.on_alert(alert)
        return alerts

    def _error(self, err: ParseError) -> None:
        if self.on_error:
            self.on_error(err)
