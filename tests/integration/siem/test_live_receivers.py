"""The syslog receiver and the NetFlow collector as live sources of ``healthsec serve`` (real sockets)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from healthsec.api.live import LiveSources
from healthsec.bus.metrics import ServiceMetrics
from healthsec.config import Settings
from healthsec.ingest.siem.listeners import parse_message, parse_rfc5424
from healthsec.model import Event, Flow, LogRecord

pytestmark = pytest.mark.integration

RFC5424 = (
    "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
    '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] '
    "\ufeffAn application event log entry"
)
RFC3164 = "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def submit(self, org: str, bodies: Sequence[Mapping[str, Any]], events: Sequence[Event]) -> int:
        self.events.extend(events)
        return len(events)


def test_rfc5424_parser_and_bad_messages() -> None:
    ts, fields, msg = parse_rfc5424(RFC5424)
    assert ts.isoformat() == "2003-10-11T22:14:15.003000+00:00"
    assert fields["sd.exampleSDID@32473.eventID"] == "1011" and fields["facility"] == 20
    assert msg == "An application event log entry"
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    rec = parse_message(RFC3164, source="syslog", peer="udp:10.0.0.1", seq=1, received=now)
    assert rec.host == "mymachine" and rec.provider == "su" and rec.ts.year == 2026
    for bad in (
        "hello",
        "<999>1 2003-10-11T22:14:15Z h a - - - x",
        "<13>1 2003-10-11T22:14:15Z h a - - [x y] m",
    ):
        with pytest.raises(ValueError):
            parse_message(bad, source="syslog", peer="p", seq=2, received=now)


def test_live_syslog_and_netflow(shared_data: Path) -> None:
    dat = shared_data / "netflow-ipfix-captures" / "logstash-codec-netflow-dat"
    settings = Settings(syslog_listen="127.0.0.1:0", netflow_listen="127.0.0.1:0")
    sink = Sink()

    async def main() -> LiveSources:
        live = LiveSources(settings, sink, ServiceMetrics("api"))
        await live.start()
        sport, nport = live.states["syslog"].port, live.states["netflow"].port
        assert sport and nport
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.sendto(RFC5424.encode(), ("127.0.0.1", sport))
            u.sendto(b"not syslog at all", ("127.0.0.1", sport))
            # data before its template: held, then released by the template
            u.sendto((dat / "netflow9_test_cisco_asa_1_data.dat").read_bytes(), ("127.0.0.1", nport))
            u.sendto((dat / "netflow9_test_invalid01.dat").read_bytes(), ("127.0.0.1", nport))
            await asyncio.sleep(0.2)
            assert live.states["netflow"].events == 0
            u.sendto((dat / "netflow9_test_cisco_asa_1_tpl.dat").read_bytes(), ("127.0.0.1", nport))
        _, writer = await asyncio.open_connection("127.0.0.1", sport)
        framed = RFC3164.encode()
        writer.write(str(len(framed)).encode() + b" " + framed + RFC3164.encode() + b"\n")
        await writer.drain()
        writer.close()
        for _ in range(50):
            await asyncio.sleep(0.1)
            if len(sink.events) >= 3 + 14:
                break
        await live.stop()
        return live

    live = asyncio.run(main())
    logs = [e for e in sink.events if isinstance(e, LogRecord)]
    flows = [e for e in sink.events if isinstance(e, Flow)]
    assert len(logs) == 3 and len(flows) == 14
    assert {e.provider for e in logs} == {"evntslog", "su"}
    assert len({e.id for e in logs}) == 3  # two identical lines are two events
    status = live.status()
    assert status["syslog"]["errors"] == 1 and status["netflow"]["errors"] == 1
    assert "not syslog at all" not in str(status)  # input values are not echoed
