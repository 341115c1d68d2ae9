"""NetFlow v5, v9 and IPFIX export packets into Flows: a decoder with templates per exporter, files and pcaps.

The packet parsing is the ``netflow`` library's (v5/v9/IPFIX record layouts and field names); what is ours
is the collector's state around it. Templates are kept per exporter (address) and observation domain /
source id, as RFC 7011 and RFC 3954 scope them (the library keeps one global table). A data set that
arrives before its template is **held** (a bounded queue per exporter) and decoded when the template
comes; past the bound the oldest held packet is given up as a ParseError, and whatever is still held when
a file ends is reported the same way, so nothing is dropped silently. ``stats`` counts all of it.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from healthsec.model import Event, Flow, ParseError
from healthsec.model.common import stable_id

PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "ipv6-icmp", 132: "sctp"}
_SRC = ("IPV4_SRC_ADDR", "IPV6_SRC_ADDR", "sourceIPv4Address", "sourceIPv6Address")
_DST = ("IPV4_DST_ADDR", "IPV6_DST_ADDR", "destinationIPv4Address", "destinationIPv6Address")
_SPORT = ("L4_SRC_PORT", "SRC_PORT", "sourceTransportPort")
_DPORT = ("L4_DST_PORT", "DST_PORT", "destinationTransportPort")
_PROTO = ("PROTOCOL", "PROTO", "protocolIdentifier")
_BYTES = ("IN_BYTES", "IN_OCTETS", "octetDeltaCount", "octetTotalCount")
_PKTS = ("IN_PKTS", "IN_PACKETS", "packetDeltaCount", "packetTotalCount")
_OUT_BYTES = ("OUT_BYTES", "postOctetDeltaCount")
_OUT_PKTS = ("OUT_PKTS", "postPacketDeltaCount")


def _first(rec: dict[str, Any], keys: Sequence[str]) -> Any:
    for k in keys:
        if k in rec and rec[k] is not None:
            return rec[k]
    return None


def _ip(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


@dataclass
class DecoderStats:
    packets: int = 0
    flows: int = 0
    option_records: int = 0
    malformed: int = 0
    held: int = 0  # packets put on hold (data before template)
    released: int = 0  # held packets decoded once their template came
    given_up: int = 0  # held packets reported as ParseErrors (bound reached, or never a template)
    holding: int = 0  # held right now


@dataclass
class _Held:
    payload: bytes
    locator: str
    record: int
    received: datetime


class NetflowDecoder:
    """Turns export packets into Flows (or ParseErrors), keeping templates and held packets per exporter."""

    def __init__(self, source: str = "netflow", max_held: int = 256) -> None:
        self.source = source
        self.max_held = max_held
        self.stats = DecoderStats()
        self._templates: dict[tuple[str, int, int], dict[Any, Any]] = {}
        self._held: dict[tuple[str, int, int], deque[_Held]] = {}

    def feed(
        self, payload: bytes, exporter: str, *, locator: str, record: int, received: datetime | None = None
    ) -> list[Event | ParseError]:
        """Decode one packet; returns its flows, any held packets its templates released, and errors."""
        self.stats.packets += 1
        received = received or datetime.now(UTC)
        if len(payload) < 4:
            self.stats.malformed += 1
            return [ParseError(self.source, locator, "export packet shorter than a header", record=record)]
        version = struct.unpack("!H", payload[:2])[0]
        key = (exporter, version, self._domain(payload, version))
        out: list[Event | ParseError] = []
        status = self._decode(payload, key, locator, record, received, out)
        if status == "held":
            self._hold(key, _Held(payload, locator, record, received), out)
        elif status == "new-templates" and self._held.get(key):
            queue = self._held.pop(key)
            self.stats.holding -= len(queue)
            for h in queue:  # retry in arrival order; what still lacks a template goes back on hold
                again = self._decode(h.payload, key, h.locator, h.record, h.received, out)
                if again == "held":
                    self._hold(key, h, out, count=False)
                else:
                    self.stats.released += 1
        return out

    def flush(self) -> list[ParseError]:
        """Everything still held becomes a ParseError (end of a file; a collector keeps holding)."""
        out = []
        for (exporter, version, domain), queue in self._held.items():
            for h in queue:
                self.stats.given_up += 1
                out.append(
                    ParseError(
                        self.source,
                        h.locator,
                        f"NetFlow v{version} data from {exporter} (domain {domain}) never got its template",
                        record=h.record,
                    )
                )
        self._held.clear()
        self.stats.holding = 0
        return out

    @staticmethod
    def _domain(payload: bytes, version: int) -> int:
        if version == 9 and len(payload) >= 20:
            return int(struct.unpack("!I", payload[16:20])[0])
        if version == 10 and len(payload) >= 16:
            return int(struct.unpack("!I", payload[12:16])[0])
        return 0

    def _hold(
        self, key: tuple[str, int, int], h: _Held, out: list[Event | ParseError], count: bool = True
    ) -> None:
        queue = self._held.setdefault(key, deque())
        queue.append(h)
        self.stats.holding += 1
        if count:
            self.stats.held += 1
        while len(queue) > self.max_held:
            old = queue.popleft()
            self.stats.holding -= 1
            self.stats.given_up += 1
            out.append(
                ParseError(
                    self.source,
                    old.locator,
                    f"NetFlow data from {key[0]} held past the bound of {self.max_held} packets: no template",
                    record=old.record,
                )
            )

    def _decode(
        self,
        payload: bytes,
        key: tuple[str, int, int],
        locator: str,
        record: int,
        received: datetime,
        out: list[Event | ParseError],
    ) -> str:
        from netflow.ipfix import IPFIXExportPacket, IPFIXTemplateNotRecognized
        from netflow.v5 import V5ExportPacket
        from netflow.v9 import V9ExportPacket, V9TemplateNotRecognized

        version = key[1]
        templates = self._templates.setdefault(key, {})
        before = len(templates)
        try:
            if version == 5:
                pkt: Any = V5ExportPacket(payload)
                if pkt.header.count * 48 + 24 > len(payload):
                    raise ValueError(f"header claims {pkt.header.count} records, the packet holds fewer")
            elif version == 9:
                pkt = V9ExportPacket(payload, templates)
            elif version == 10:
                pkt = IPFIXExportPacket(payload, templates)
            else:
                raise ValueError(f"unknown export version {version}")
        except (V9TemplateNotRecognized, IPFIXTemplateNotRecognized):
            return "held"
        except Exception as exc:  # the library raises struct.error, KeyError, its own errors...
            self.stats.malformed += 1
            reason = f"malformed NetFlow v{version} packet from {key[0]}: {type(exc).__name__} {exc}"[:300]
            out.append(ParseError(self.source, locator, reason, record=record))
            return "error"
        for n, rec in enumerate(pkt.flows):
            flow = self._flow(rec.data, pkt.header, key, locator, record, n, received)
            if flow is None:
                self.stats.option_records += 1
            else:
                self.stats.flows += 1
                out.append(flow)
        return "new-templates" if len(templates) > before else "ok"

    def _flow(
        self,
        rec: dict[str, Any],
        header: Any,
        key: tuple[str, int, int],
        locator: str,
        record: int,
        n: int,
        received: datetime,
    ) -> Flow | None:
        src, dst = _ip(_first(rec, _SRC)), _ip(_first(rec, _DST))
        if src is None and dst is None:
            return None  # an options record (sampling rate, interface names): not a flow
        start, end = self._times(rec, header, received)
        proto = _first(rec, _PROTO)
        return Flow(
            id=stable_id("nf", key[0], key[1], key[2], locator, record, n),
            ts=start,
            source=self.source,
            src_ip=src,
            dst_ip=dst,
            src_port=_count(_first(rec, _SPORT)),
            dst_port=_count(_first(rec, _DPORT)),
            protocol=PROTOCOLS.get(proto, str(proto)) if isinstance(proto, int) else None,
            duration=max(0.0, (end - start).total_seconds()) if end else None,
            bytes_out=_count(_first(rec, _BYTES)),
            bytes_in=_count(_first(rec, _OUT_BYTES)),
            packets_out=_count(_first(rec, _PKTS)),
            packets_in=_count(_first(rec, _OUT_PKTS)),
            features={"exporter": key[0], "netflow_version": str(key[1])},
        )

    @staticmethod
    def _times(rec: dict[str, Any], header: Any, received: datetime) -> tuple[datetime, datetime | None]:
        """Start/end: IPFIX absolute fields, else v5/v9 uptime-relative ones, else the export time."""
        for a, b, scale in (
            ("flowStartMilliseconds", "flowEndMilliseconds", 1000),
            ("flowStartSeconds", "flowEndSeconds", 1),
        ):
            if isinstance(rec.get(a), int):
                try:
                    start = datetime.fromtimestamp(rec[a] / scale, UTC)
                    end = datetime.fromtimestamp(rec[b] / scale, UTC) if isinstance(rec.get(b), int) else None
                    return start, end
                except (OverflowError, OSError, ValueError):
                    break
        export_ts = getattr(header, "timestamp", None) or getattr(header, "export_uptime", None)
        base = datetime.fromtimestamp(export_ts, UTC) if isinstance(export_ts, int) else received
        uptime = getattr(header, "uptime", None)
        first, last = rec.get("FIRST_SWITCHED"), rec.get("LAST_SWITCHED")
        if isinstance(uptime, int) and isinstance(first, int) and first <= uptime:
            start = base - timedelta(milliseconds=uptime - first)
            end = (
                base - timedelta(milliseconds=uptime - last)
                if isinstance(last, int) and last <= uptime
                else None
            )
            return start, end
        return base, None


def _pcap_payloads(path: Path) -> Iterator[tuple[int, str, bytes, datetime]]:
    """(record, exporter address, UDP payload, capture time) per UDP datagram of a pcap (dpkt)."""
    import dpkt

    with path.open("rb") as fh:
        reader = dpkt.pcap.Reader(fh)
        link = reader.datalink()
        for n, (ts, buf) in enumerate(reader, 1):
            try:
                if link == dpkt.pcap.DLT_LINUX_SLL:  # Linux cooked capture (pmacct's pcaps)
                    ip: Any = dpkt.sll.SLL(buf).data
                elif link in (dpkt.pcap.DLT_RAW, 101):
                    ip = dpkt.ip.IP(buf) if buf[:1] and buf[0] >> 4 == 4 else dpkt.ip6.IP6(buf)
                else:
                    ip = dpkt.ethernet.Ethernet(buf).data
            except (dpkt.dpkt.UnpackError, IndexError):
                continue
            if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6) or not isinstance(ip.data, dpkt.udp.UDP):
                continue
            src = str(ipaddress.ip_address(ip.src))
            yield n, src, bytes(ip.data.data), datetime.fromtimestamp(ts, UTC)


@dataclass
class NetflowFileSource:
    """Reads export packets from pcaps (exporter = UDP source) or bare ``.dat`` payloads, in the order given.

    ``.dat`` files carry no exporter address: they are read as one exporter (``exporter``), so a template
    file given before its data file decodes it, as the same exporter would.
    """

    paths: Sequence[Path]
    name: str = "netflow"
    exporter: str = "file"
    max_held: int = 256
    decoder: NetflowDecoder | None = field(default=None)

    def read(self) -> Iterator[Event | ParseError]:
        dec = self.decoder = NetflowDecoder(self.name, self.max_held)
        for path in self.paths:
            locator = str(path)
            try:
                if path.suffix in (".pcap", ".pcapng", ".cap"):
                    for n, exporter, payload, ts in _pcap_payloads(path):
                        yield from dec.feed(payload, exporter, locator=locator, record=n, received=ts)
                else:
                    payload = path.read_bytes()
                    yield from dec.feed(payload, self.exporter, locator=locator, record=1)
            except (OSError, ValueError) as exc:
                yield ParseError(self.name, locator, f"cannot read: {type(exc).__name__}: {exc}")
        yield from dec.flush()
