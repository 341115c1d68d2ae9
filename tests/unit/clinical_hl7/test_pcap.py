"""HL7 from captures: the nDPI sample, and a capture with out-of-order, split and truncated MLLP."""

from __future__ import annotations

import socket
from pathlib import Path

import dpkt

from healthsec.ingest.hl7 import HL7PcapSource, frame
from healthsec.model import ClinicalMessage, ParseError

MSG = "MSH|^~\\&|LAB|H|EHR|H|20250102030405||ORU^R01|C{n}|P|2.5.1\rPID|1||MRN{n}"


def test_ndpi_sample(shared_data: Path) -> None:
    items = list(HL7PcapSource([shared_data / "protocol-pcaps-ndpi" / "pcap" / "hl7.pcap"]).read())
    assert [i.message_type for i in items if isinstance(i, ClinicalMessage)] == ["ADT^A01", "ACK"]
    adt = items[0]
    assert isinstance(adt, ClinicalMessage)
    assert (adt.src_ip, adt.dst_ip, adt.fields["received_at"]) == (
        "10.0.0.155",
        "10.0.0.126",
        "2018-01-30T01:23:42.252881+00:00",
    )


def _packet(seq: int, payload: bytes) -> bytes:
    tcp = dpkt.tcp.TCP(
        sport=40000, dport=2575, seq=seq, flags=dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, data=payload
    )
    ip = dpkt.ip.IP(
        src=socket.inet_aton("10.1.1.1"), dst=socket.inet_aton("10.1.1.2"), p=dpkt.ip.IP_PROTO_TCP, data=tcp
    )
    ip.len = len(bytes(ip))
    return bytes(dpkt.ethernet.Ethernet(src=b"\x00" * 6, dst=b"\x00" * 6, data=ip))


def test_reassembly_out_of_order_duplicates_and_truncation(tmp_path: Path) -> None:
    stream = frame(MSG.format(n=1)) + frame(MSG.format(n=2)) + frame(MSG.format(n=3))[:30]
    pieces = [(1000 + i, stream[i : i + 40]) for i in range(0, len(stream), 40)]
    order = [pieces[1], pieces[0], *pieces[2:], pieces[2]]  # out of order, one retransmission
    path = tmp_path / "mllp.pcap"
    with path.open("wb") as fh:
        writer = dpkt.pcap.Writer(fh)
        for k, (seq, data) in enumerate(order):
            writer.writepkt(_packet(seq, data), ts=1_700_000_000 + k)
    items = list(HL7PcapSource([path]).read())
    events = [i for i in items if isinstance(i, ClinicalMessage)]
    assert [e.fields["control_id"] for e in events] == ["C1", "C2"]
    assert all(e.fields["errors"] == [] and e.src_ip == "10.1.1.1" for e in events)
    errors = [i for i in items if isinstance(i, ParseError)]
    assert len(errors) == 1 and "stream ends inside an MLLP block" in errors[0].reason
    assert errors[0].locator.endswith("10.1.1.1:40000->10.1.1.2:2575")


def test_unreadable_capture_is_a_parse_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    items = list(HL7PcapSource([bad]).read())
    assert len(items) == 1 and isinstance(items[0], ParseError) and "cannot read capture" in items[0].reason
