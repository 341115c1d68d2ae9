"""Live receivers for `healthsec serve`: syslog (RFC 5424 and 3164, UDP and TCP) and NetFlow/IPFIX (UDP).

Syslog over TCP accepts RFC 6587 octet counting and newline framing; a frame longer than ``max_size`` ends
that connection with a ParseError (no unbounded buffering). Each message becomes a LogRecord on channel
``syslog`` (RFC 5424 structured data flattened as ``sd.<id>.<param>``); a line that is neither format is a
ParseError naming the peer and message number. The NetFlow collector keeps templates per exporter and
holds data that came before its template (see :mod:`healthsec.ingest.siem.netflow`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from healthsec.ingest.siem.jsonfile import parse_ts
from healthsec.ingest.siem.netflow import NetflowDecoder
from healthsec.model import Event, LogRecord, ParseError
from healthsec.model.common import stable_id

MAX_MESSAGE = 64 * 1024
_HEADER = re.compile(
    r"^<(?P<pri>\d{1,3})>(?P<ver>[1-9]\d{0,2}) (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) "
    r"(?P<msgid>\S+) (?P<rest>.*)$",
    re.DOTALL,
)
_SD_ELEMENT = re.compile(r'\[(?P<id>[^\s\]=]+)(?P<params>(?: [^\s=\]]+="(?:\\.|[^"\\])*")*)\]')
_SD_PARAM = re.compile(r'([^\s=\]]+)="((?:\\.|[^"\\])*)"')


class SyslogError(ValueError):
    pass


def _nil(v: str) -> str | None:
    return None if v == "-" else v


def _structured_data(rest: str) -> tuple[dict[str, object], str]:
    """Parse the SD part of an RFC 5424 message; returns (fields, message)."""
    if rest.startswith("-"):
        return {}, rest[2:] if len(rest) > 1 else ""
    fields: dict[str, object] = {}
    pos = 0
    while pos < len(rest) and rest[pos] == "[":
        m = _SD_ELEMENT.match(rest, pos)
        if not m:
            raise SyslogError("malformed structured data")
        for k, v in _SD_PARAM.findall(m["params"]):
            fields[f"sd.{m['id']}.{k}"] = re.sub(r"\\(.)", r"\1", v)
        pos = m.end()
    if pos == 0:
        raise SyslogError("structured data is neither '-' nor an element")
    return fields, rest[pos + 1 :] if rest[pos : pos + 1] == " " else rest[pos:]


def parse_rfc5424(text: str) -> tuple[datetime, dict[str, object], str]:
    m = _HEADER.match(text)
    if not m:
        raise SyslogError("not an RFC 5424 header")
    pri = int(m["pri"])
    if pri > 191:
        raise SyslogError(f"priority {pri} out of range")
    if m["ts"] == "-":
        ts = datetime.now(UTC)
    else:
        try:
            ts = parse_ts(m["ts"])
        except ValueError:
            raise SyslogError(f"bad timestamp {m['ts'][:40]!r}") from None
    sd, msg = _structured_data(m["rest"])
    fields: dict[str, object] = {
        "facility": pri // 8,
        "severity": pri % 8,
        "host": _nil(m["host"]),
        "program": _nil(m["app"]),
        "pid": _nil(m["procid"]),
        "msgid": _nil(m["msgid"]),
        **sd,
    }
    return ts, fields, msg.removeprefix("\ufeff")


def parse_message(text: str, *, source: str, peer: str, seq: int, received: datetime) -> LogRecord:
    """One syslog message (RFC 5424, else RFC 3164 with the receive year) as a LogRecord."""
    from healthsec.ingest.logs.text import parse_syslog
    from healthsec.ingest.logs.windows import RecordError

    text = text.rstrip("\r\n\x00")
    if text.startswith("<") and _HEADER.match(text):
        ts, fields, msg = parse_rfc5424(text)
    else:
        try:
            rec = parse_syslog(text, source=source, locator=peer, record=seq, year=received.year)
        except RecordError as exc:
            raise SyslogError(str(exc)) from None
        ts, fields, msg = rec.ts, dict(rec.fields), rec.message or ""
    fields["peer"] = peer
    host = fields.get("host")
    return LogRecord(
        id=stable_id("syslog", source, peer, received.isoformat(), seq),
        ts=ts,
        source=source,
        host=str(host) if host else peer,
        channel="syslog",
        provider=str(fields["program"]) if fields.get("program") else None,
        fields=fields,
        message=msg,
    )


@dataclass
class SyslogListener:
    """UDP and TCP on the same port; ``on_event``/``on_error`` are called for each message."""

    host: str
    port: int
    on_event: Callable[[Event], None]
    on_error: Callable[[ParseError], None]
    source: str = "syslog"
    max_size: int = MAX_MESSAGE
    _server: Any = None
    _transport: Any = None
    _seq: int = 0
    _started: datetime = field(default_factory=lambda: datetime.now(UTC))

    def _message(self, data: bytes, peer: str) -> None:
        self._seq += 1
        try:
            text = data.decode("utf-8")
            self.on_event(
                parse_message(text, source=self.source, peer=peer, seq=self._seq, received=self._started)
            )
        except (UnicodeDecodeError, SyslogError, ValueError) as exc:
            reason = f"syslog message: {type(exc).__name__}: {exc}"[:200]
            self.on_error(ParseError(self.source, peer, reason, record=self._seq))

    async def start(self) -> int:
        listener = self

        class Udp(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                listener._message(data[: listener.max_size], f"udp:{addr[0]}")

        self._server = await asyncio.start_server(self._tcp, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(Udp, local_addr=(self.host, self.port))
        return self.port

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        where = f"tcp:{peer[0]}" if peer else "tcp:?"
        try:
            while True:
                head = await reader.read(1)
                if not head:
                    return
                if head.isdigit():  # RFC 6587 octet counting: "LEN SP MSG"
                    digits = head + await reader.readuntil(b" ")
                    size = int(digits[:-1])
                    if size > self.max_size:
                        self.on_error(ParseError(self.source, where, f"frame of {size} bytes over the limit"))
                        return
                    self._message(await reader.readexactly(size), where)
                else:  # non-transparent framing: one message per line
                    line = head + await reader.readuntil(b"\n")
                    if len(line) > self.max_size:
                        self.on_error(ParseError(self.source, where, "line over the limit"))
                        return
                    self._message(line, where)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, ConnectionError):
            return
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@dataclass
class NetflowCollector:
    """A UDP NetFlow v5/v9/IPFIX collector (exporter = the datagram's source address)."""

    host: str
    port: int
    on_event: Callable[[Event], None]
    on_error: Callable[[ParseError], None]
    source: str = "netflow"
    max_held: int = 256
    decoder: NetflowDecoder | None = None
    _transport: Any = None
    _seq: int = 0

    async def start(self) -> int:
        self.decoder = NetflowDecoder(self.source, self.max_held)
        collector = self

        class Udp(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                collector._packet(data, str(addr[0]))

        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(Udp, local_addr=(self.host, self.port))
        self.port = int(self._transport.get_extra_info("sockname")[1])
        return self.port

    def _packet(self, data: bytes, exporter: str) -> None:
        assert self.decoder is not None
        self._seq += 1
        for item in self.decoder.feed(data, exporter, locator=f"udp:{exporter}", record=self._seq):
            if isinstance(item, ParseError):
                self.on_error(item)
            else:
                self.on_event(item)

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
