"""HL7 v2 from packet captures: TCP reassembly (dpkt) per direction, MLLP deframing, one event per message."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import dpkt

from healthsec.ingest.hl7.mllp import MllpDecoder
from healthsec.ingest.hl7.parse import message_event, split_messages
from healthsec.model import ClinicalMessage, ParseError

FlowKey = tuple[str, int, str, int]


@dataclass
class _Stream:
    """One TCP direction: segments by sequence number (with capture time), reassembled at the end."""

    first_ts: float
    segments: dict[int, tuple[float, bytes]] = field(default_factory=dict)

    def chunks(self) -> Iterator[tuple[float, bytes]]:
        """In-order, de-duplicated payload pieces with the capture time of the packet carrying each.

        Hand-written reassembly: nfstream gives flow statistics, not payload streams, and dpkt only
        decodes packets. Overlaps keep the first copy; gaps are skipped.
        """
        next_seq: int | None = None
        for seq in sorted(self.segments):
            ts, data = self.segments[seq]
            end = seq + len(data)
            if next_seq is not None and seq < next_seq:
                data = data[next_seq - seq :]
            if data:
                yield ts, data
            next_seq = end if next_seq is None else max(next_seq, end)


def _ip_text(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(raw) == 16 else socket.AF_INET, raw)


class _CappedReads:
    """A file whose ``read(n)`` never asks for more than the file still holds.

    dpkt reads a record with ``read(caplen)`` as the capture declares it: a corrupt 4 GB caplen made
    Python allocate the whole buffer before reading (found by fuzzing: 134 MB for a 1.3 kB file).
    """

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._size = os.fstat(fh.fileno()).st_size
        self.name = getattr(fh, "name", "<capture>")

    def read(self, n: int = -1) -> bytes:
        left = max(self._size - self._fh.tell(), 0)
        return self._fh.read(left if n is None or n < 0 else min(n, left))

    def __getattr__(self, attr: str) -> object:
        return getattr(self._fh, attr)


def _packets(path: Path) -> Iterator[tuple[float, dpkt.ip.IP | dpkt.ip6.IP6]]:
    with path.open("rb") as raw:
        fh = _CappedReads(raw)
        head = fh.read(4)
        raw.seek(0)
        reader = dpkt.pcapng.Reader(fh) if head == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(fh)
        link = reader.datalink()
        for ts, buf in reader:
            try:
                if link == dpkt.pcap.DLT_EN10MB:
                    pkt = dpkt.ethernet.Ethernet(buf).data
                elif link == dpkt.pcap.DLT_LINUX_SLL:
                    pkt = dpkt.sll.SLL(buf).data
                elif link == dpkt.pcap.DLT_NULL or link == dpkt.pcap.DLT_LOOP:
                    pkt = dpkt.loopback.Loopback(buf).data
                else:
                    pkt = dpkt.ip.IP(buf) if buf[:1] and buf[0] >> 4 == 4 else dpkt.ip6.IP6(buf)
            except (dpkt.UnpackError, IndexError):
                continue
            if isinstance(pkt, (dpkt.ip.IP, dpkt.ip6.IP6)):
                yield float(ts), pkt


@dataclass
class HL7PcapSource:
    """Reads HL7 v2 (MLLP over TCP) from pcap/pcapng files; ``ports`` limits which TCP ports are read."""

    paths: list[Path]
    ports: frozenset[int] | None = None
    name: str = "hl7-pcap"

    def read(self) -> Iterator[ClinicalMessage | ParseError]:
        for path in self.paths:
            yield from self._read(path)

    def _read(self, path: Path) -> Iterator[ClinicalMessage | ParseError]:
        streams: dict[FlowKey, _Stream] = {}
        try:
            for ts, ip in _packets(path):
                tcp = ip.data
                if not isinstance(tcp, dpkt.tcp.TCP) or not tcp.data:
                    continue
                if self.ports and tcp.sport not in self.ports and tcp.dport not in self.ports:
                    continue
                key = (_ip_text(ip.src), tcp.sport, _ip_text(ip.dst), tcp.dport)
                stream = streams.setdefault(key, _Stream(first_ts=ts))
                stream.segments.setdefault(tcp.seq, (ts, bytes(tcp.data)))
        except (OSError, ValueError, dpkt.NeedData) as exc:
            yield ParseError(self.name, str(path), f"cannot read capture: {exc}")
        record = 0
        for (src, sport, dst, dport), stream in streams.items():
            chunks = list(stream.chunks())
            head = b"".join(c for _, c in chunks[:4])
            if b"\x0b" not in head and not any(b"\x0b" in c for _, c in chunks):
                continue
            dec = MllpDecoder()
            locator = f"{path}#{src}:{sport}->{dst}:{dport}"
            for ts, chunk in chunks:
                received = datetime.fromtimestamp(ts, UTC)  # when the message's last byte was captured
                for block in dec.feed(chunk):
                    if block is None:
                        record += 1
                        yield ParseError(self.name, locator, "MLLP block larger than the size limit", record)
                        continue
                    for msg in split_messages(block.decode("utf-8", "replace")):
                        record += 1
                        yield message_event(
                            msg,
                            source=self.name,
                            locator=locator,
                            record=record,
                            received=received,
                            src_ip=src,
                            dst_ip=dst,
                            live=True,
                        )
            if dec.pending:
                record += 1
                yield ParseError(
                    self.name, locator, f"stream ends inside an MLLP block ({dec.pending} bytes)", record
                )
