"""Flow readers on the public data sets and on malformed input (empty, ragged, NaN/inf, missing columns)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from healthsec.ingest.flows import FlowFileSource, FlowFormatError, flows_from_table, read_table
from healthsec.model import Flow, ParseError


def test_nsl_kdd_labels_kept_apart_with_official_counts(shared_data: Path) -> None:
    t = read_table(shared_data / "nsl-kdd" / "KDDTrain+_20Percent.txt.gz", "nsl-kdd")
    assert len(t) == 25_192
    assert "label" not in t.frame.columns and "difficulty" not in t.frame.columns
    assert t.labels is not None
    counts = {k: t.labels.count(k) for k in ("benign", "dos", "probe", "r2l", "u2r")}
    assert counts == {"benign": 13_449, "dos": 9_234, "probe": 2_289, "r2l": 209, "u2r": 11}
    assert t.categorical == ("protocol_type", "service", "flag")
    assert t.errors == []


def test_unsw_nb15_binary_and_category(shared_data: Path) -> None:
    t = read_table(shared_data / "unsw-nb15" / "UNSW_NB15_training-set.csv.gz", "unsw-nb15")
    assert len(t) == 82_332
    assert t.labels is not None and t.labels.count("benign") == 37_000
    assert t.labels.count("generic") == 18_871
    for col in ("id", "label", "attack_cat"):
        assert col not in t.frame.columns
    assert t.is_attack is not None and int(t.is_attack.sum()) == 45_332


def test_flow_events_are_typed_stable_and_unlabelled(shared_data: Path) -> None:
    t = read_table(shared_data / "nsl-kdd" / "KDDTest-21.txt.gz", "nsl-kdd")
    first = list(flows_from_table(t, 0, 3))
    again = list(flows_from_table(t, indices=[0, 1, 2]))
    assert [f.id for f in first] == [f.id for f in again]
    f = first[0]
    # line 1: 13,tcp,telnet,SF,118,2425,...,guess_passwd,2
    assert isinstance(f, Flow) and f.protocol == "tcp" and f.application == "telnet"
    assert f.duration == 13.0 and f.bytes_out == 118 and f.bytes_in == 2425 and f.features["flag"] == "SF"
    assert "label" not in f.features and f.provenance is not None and f.provenance.record == 1


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "empty.csv"
    p.write_text("")
    with pytest.raises(FlowFormatError, match=r"empty\.csv: file is empty"):
        read_table(p, "csv", "label")


def test_missing_label_column_names_it(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("a,b,verdict\n1,2,benign\n")
    with pytest.raises(FlowFormatError, match="label column 'Label' not found"):
        read_table(p, "csv", "Label")


def test_ragged_rows_are_skipped_by_line_and_the_rest_kept(tmp_path: Path) -> None:
    p = tmp_path / "ragged.csv"
    p.write_text(
        "dur,bytes,proto,label\n1.0,10,tcp,benign\n2.0,20\n3.0,30,udp,attack,extra\n4.0,40,tcp,attack\n"
    )
    t = read_table(p, "csv", "label")
    assert len(t) == 2 and t.labels == ["benign", "attack"]
    assert [e.record for e in t.errors] == [3, 4]
    assert "expected 4 fields, found 2" in t.errors[0].reason
    assert t.record_numbers is not None and t.record_numbers.tolist() == [2, 5]


def test_cicflowmeter_names_normalised_and_infinities_counted(tmp_path: Path) -> None:
    p = tmp_path / "cic.csv"
    p.write_text(
        " Destination Port, Flow Duration, Flow Bytes/s, Src IP, Label\n"
        "443,100,12.5,10.0.0.1,BENIGN\n80,5,Infinity,10.0.0.2,DDoS\n22,7,NaN,10.0.0.3,DDoS\n"
    )
    t = read_table(p, "cicflowmeter")
    assert t.labels == ["benign", "ddos", "ddos"]
    assert "src_ip" not in t.frame.columns  # identifiers are metadata, not features
    assert t.frame["flow_bytes_s"].to_list() == [12.5, None, None]  # missing, never 0
    assert any("flow_bytes_s" in n and "NaN/infinite" in n for n in t.notes)
    flows = list(flows_from_table(t))
    assert flows[1].dst_port == 80 and flows[0].src_ip == "10.0.0.1"


def test_nsl_kdd_with_wrong_width_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "bad.txt"
    p.write_text("0,tcp,http,SF,1\n")
    with pytest.raises(FlowFormatError, match="not NSL-KDD data, line 1 has 5 fields"):
        read_table(p, "nsl-kdd")


ZEEK_TSV = """#separator \\x09
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring
1588205199.8\tC1\t10.0.1.6\t54243\t10.0.0.4\t53\tudp\tdns\t0.0015\t39\t55\tSF
1588205200.1\tC2\t10.0.1.6\t56880\t10.0.0.4\t445\ttcp\t-\t-\t-\t-\tS0
1588205201.0\tC3\ttruncated
"""


def test_zeek_tsv_unset_fields_are_missing_and_bad_lines_reported(tmp_path: Path) -> None:
    p = tmp_path / "conn.log"
    p.write_text(ZEEK_TSV)
    t = read_table(p, "zeek")
    assert len(t) == 2 and t.labels is None
    assert [e.record for e in t.errors] == [6]
    flows = list(flows_from_table(t))
    assert flows[0].src_ip == "10.0.1.6" and flows[0].dst_port == 53 and flows[0].bytes_in == 55
    assert flows[1].duration is None and flows[1].bytes_out is None
    assert flows[0].ts.year == 2020


def test_zeek_json_combined_log_keeps_conn_records(shared_data: Path) -> None:
    p = shared_data / "otrf-security-datasets/datasets/compound/apt29/day1/zeek/combined_zeek.log.gz"
    t = read_table(p, "zeek")
    assert len(t) == 613  # conn records of day 1 per the data set's SOURCE.md
    assert "conn_state" in t.categorical


def test_pcap_hl7_application_label(shared_data: Path) -> None:
    t = read_table(shared_data / "protocol-pcaps-ndpi" / "pcap" / "hl7.pcap", "pcap")
    assert len(t) == 1
    assert t.meta["application"].to_list() == ["HL7"]


def test_empty_and_truncated_captures(tmp_path: Path, shared_data: Path) -> None:
    empty = tmp_path / "empty.pcap.gz"
    empty.write_bytes(gzip.compress(b""))
    with pytest.raises(FlowFormatError, match="capture is empty"):
        read_table(empty, "pcap")
    raw = (shared_data / "protocol-pcaps-ndpi" / "pcap" / "modbus.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(raw[: len(raw) // 2 + 7])  # ends in the middle of a packet record
    t = read_table(cut, "pcap")  # the packets before the cut are kept
    assert len(t) >= 1


def test_source_yields_events_then_errors_and_never_raises(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("a,label\n1,benign\n2\n")  # the short row has no label
    items = list(FlowFileSource(str(p), "csv", "label").read())
    assert isinstance(items[0], Flow)
    assert isinstance(items[-1], ParseError) and items[-1].record == 3
    missing = list(FlowFileSource(str(tmp_path / "nope.csv"), "csv").read())
    assert len(missing) == 1 and isinstance(missing[0], ParseError) and "no such file" in missing[0].reason


def test_numeric_labels_become_benign_and_attack(tmp_path: Path) -> None:
    p = tmp_path / "bin.csv"
    p.write_text("x,y,is_bad\n1,2,0\n3,4,1\n5,6,0\n")
    t = read_table(p, "csv", "is_bad")
    assert t.labels == ["benign", "attack", "benign"]
    assert "is_bad" not in t.frame.columns
