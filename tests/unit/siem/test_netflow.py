"""NetFlow v5/v9/IPFIX: broken packets named, data before its template held and released, bound counted."""

from __future__ import annotations

from pathlib import Path

from healthsec.ingest.siem.netflow import NetflowDecoder, NetflowFileSource
from healthsec.model import Flow, ParseError


def _read(paths: list[Path], **kw: int) -> tuple[list[Flow], list[ParseError], NetflowFileSource]:
    src = NetflowFileSource(paths, **kw)
    items = list(src.read())
    return (
        [i for i in items if isinstance(i, Flow)],
        [i for i in items if isinstance(i, ParseError)],
        src,
    )


def test_broken_packets_are_named_and_the_rest_go_on(shared_data: Path, tmp_path: Path) -> None:
    d = shared_data / "netflow-ipfix-captures" / "logstash-codec-netflow-dat"
    short = tmp_path / "short.dat"
    short.write_bytes(b"\x00\x09")
    unknown = tmp_path / "v7.dat"
    unknown.write_bytes(b"\x00\x07" + b"\x00" * 30)
    paths = [
        d / "netflow5_test_invalid01.dat",
        d / "netflow5_test_invalid02.dat",
        d / "netflow9_test_invalid01.dat",
        short,
        unknown,
        d / "netflow5.dat",
    ]
    flows, errors, src = _read(paths)
    assert [Path(e.locator).name for e in errors] == [p.name for p in paths[:5]]
    assert "v5" in errors[0].reason and "v9" in errors[2].reason
    assert "shorter than a header" in errors[3].reason and "unknown export version 7" in errors[4].reason
    assert len(flows) == 2 and flows[0].src_ip == "10.0.2.2" and flows[0].dst_port == 22
    assert flows[0].protocol == "tcp" and flows[0].bytes_out == 230 and flows[0].packets_out == 5
    assert src.decoder is not None and src.decoder.stats.malformed == 5


def test_data_before_template_is_held_then_released(shared_data: Path) -> None:
    d = shared_data / "netflow-ipfix-captures" / "logstash-codec-netflow-dat"
    tpl, data = d / "netflow9_test_cisco_asa_1_tpl.dat", d / "netflow9_test_cisco_asa_1_data.dat"
    in_order, errs, _ = _read([tpl, data])
    reversed_, errs2, src = _read([data, tpl])
    assert not errs and not errs2
    assert len(in_order) == len(reversed_) == 14
    assert {(f.src_ip, f.dst_ip, f.dst_port) for f in in_order} == {
        (f.src_ip, f.dst_ip, f.dst_port) for f in reversed_
    }
    assert src.decoder is not None
    st = src.decoder.stats
    assert (st.held, st.released, st.given_up, st.holding) == (1, 1, 0, 0)


def test_held_packets_are_bounded_and_never_dropped_silently(shared_data: Path) -> None:
    d = shared_data / "netflow-ipfix-captures" / "logstash-codec-netflow-dat"
    data = d / "ipfix_test_mikrotik_data258.dat"
    flows, errors, src = _read([data, data, data, d / "ipfix_test_mikrotik_tpl.dat"], max_held=2)
    assert src.decoder is not None
    st = src.decoder.stats
    assert (st.held, st.given_up, st.released) == (3, 1, 2)
    assert len(errors) == 1 and "past the bound of 2" in errors[0].reason and errors[0].record == 1
    assert len(flows) == 2 * 28  # the two packets still held were decoded when the template came
    # a template that never comes: reported at the end of the file
    _, never, _ = _read([data])
    assert len(never) == 1 and "never got its template" in never[0].reason


def test_templates_are_per_exporter() -> None:
    dec = NetflowDecoder()
    tpl = Path(__file__).parents[3].parent / "shared/data/netflow-ipfix-captures/logstash-codec-netflow-dat"
    t = (tpl / "netflow9_test_cisco_asa_1_tpl.dat").read_bytes()
    data = (tpl / "netflow9_test_cisco_asa_1_data.dat").read_bytes()
    dec.feed(t, "10.0.0.1", locator="a", record=1)
    assert dec.feed(data, "10.0.0.2", locator="b", record=1) == []  # another exporter: held
    assert dec.stats.holding == 1
    assert len(dec.feed(data, "10.0.0.1", locator="a", record=2)) == 14


def test_real_captures(shared_data: Path) -> None:
    base = shared_data / "netflow-ipfix-captures"
    flows, errors, _ = _read([base / "akvorado" / "nfv5.pcap"])
    assert len(flows) == 29 and not errors
    flows, errors, _ = _read([base / "akvorado" / "data.pcap", base / "akvorado" / "template.pcap"])
    assert len(flows) == 4 and not errors
    flows, errors, _ = _read([base / "pmacct" / "101-NFv9-CISCO-cust_primitives" / "traffic-00.pcap"])
    assert len(flows) == 51 and not errors and all(f.ts.year >= 2000 for f in flows)
