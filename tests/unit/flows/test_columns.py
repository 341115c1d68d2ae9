"""The generic CSV path: label-like and identifier columns never become features; known layouts renamed."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from healthsec.cli import app
from healthsec.ingest.flows import FlowFormatError, read_table, training_frame
from healthsec.ingest.flows.columns import recognise


def _leaky_csv(path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 60
    attack = np.arange(n) % 3 == 0
    pl.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "Src IP": [f"10.0.0.{i % 7}" for i in range(n)],
            "dst_port": rng.integers(1, 65535, n),
            "Timestamp": [f"2024-01-01 00:00:{i % 60:02d}" for i in range(n)],
            "bytes": rng.integers(100, 5000, n),
            "duration": rng.random(n),
            "proto": ["tcp", "udp", "icmp"] * (n // 3),
            "attack_cat": np.where(attack, "dos", "normal"),  # the answer, spelt another way
            "Label": np.where(attack, "attack", "benign"),
        }
    ).write_csv(path)


def test_a_second_label_column_and_identifiers_are_dropped_with_reasons(tmp_path: Path) -> None:
    p = tmp_path / "leaky.csv"
    _leaky_csv(p)
    t = read_table(p, "csv", "Label")
    assert set(t.frame.columns) == {"bytes", "duration", "proto"}
    notes = "\n".join(t.notes)
    assert "'attack_cat' not used as a feature: label-like" in notes
    for col in ("id", "Src IP", "dst_port", "Timestamp"):
        assert f"{col!r} not used as a feature: identifier" in notes


@pytest.mark.parametrize("label", ["label", "Label", "attack", "class", "type", "category", "is_attack"])
def test_whatever_the_label_column_is_called_the_other_label_columns_are_dropped(
    tmp_path: Path, label: str
) -> None:
    p = tmp_path / "x.csv"
    others = [c for c in ("attack_cat", "class", "is_attack") if c != label]
    header = ",".join(["bytes", *others, label])
    rows = [",".join([str(i * 37 % 11), *(["1"] * len(others)), "1" if i % 2 else "0"]) for i in range(10)]
    p.write_text("\n".join([header, *rows]) + "\n")
    t = read_table(p, "csv", label)
    assert t.frame.columns == ["bytes"]
    assert t.labels is not None and t.labels.count("attack") == 5


def test_keep_column_overrides(tmp_path: Path) -> None:
    p = tmp_path / "leaky.csv"
    _leaky_csv(p)
    t = read_table(p, "csv", "Label", keep=["dst_port"])
    assert "dst_port" in t.frame.columns and "attack_cat" not in t.frame.columns


def test_a_row_number_column_under_any_name_is_dropped(tmp_path: Path) -> None:
    p = tmp_path / "rows.csv"
    p.write_text("n,bytes,label\n" + "".join(f"{i},{i * 37 % 11},{i % 2}\n" for i in range(20)))
    t = read_table(p, "csv", "label")
    assert t.frame.columns == ["bytes"]
    assert any("'n' not used as a feature: row number" in n for n in t.notes)


def test_a_csv_with_only_label_and_identifier_columns_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "labels.csv"
    p.write_text("id,attack_cat,label\n1,dos,1\n2,normal,0\n")
    with pytest.raises(FlowFormatError, match=r"labels\.csv: no usable feature columns \(.*attack_cat"):
        read_table(p, "csv", "label")


def test_network_features_beside_patient_vital_signs(tmp_path: Path) -> None:
    """IoMT data sets mix flow columns with vital signs (e.g. WUSTL-EHMS): both are features."""
    rng = np.random.default_rng(1)
    n = 200
    attack = rng.random(n) < 0.3
    frame = pl.DataFrame(
        {
            "SrcAddr": [f"10.0.0.{i % 9}" for i in range(n)],
            "Sport": rng.integers(1024, 65535, n),
            "Dur": rng.random(n),
            "SrcBytes": np.where(attack, rng.integers(5000, 9000, n), rng.integers(100, 900, n)),
            "DstBytes": rng.integers(100, 900, n),
            "Temp": rng.normal(36.8, 0.3, n).round(1),
            "SpO2": rng.integers(94, 100, n),
            "Pulse_Rate": rng.integers(60, 100, n),
            "Heart_rate": rng.integers(60, 100, n),
            "Attack Category": np.where(attack, "spoofing", "normal"),
            "Label": attack.astype(int),
        }
    )
    p = tmp_path / "ehms.csv"
    frame.write_csv(p)
    t = read_table(p, "csv", "Label")
    assert set(t.frame.columns) == {"Dur", "SrcBytes", "DstBytes", "Temp", "SpO2", "Pulse_Rate", "Heart_rate"}
    model = tmp_path / "model"
    res = CliRunner().invoke(
        app,
        ["train", "flows", str(p), "--input-format", "csv", "--label-column", "Label", "--model", str(model)],
    )
    assert res.exit_code == 0, res.output
    assert "'Attack Category' not used as a feature: label-like" in res.output


def _renamed_unsw(shared_data: Path, tmp_path: Path, rows: int = 3000) -> tuple[Path, Path]:
    src = shared_data / "unsw-nb15" / "UNSW_NB15_training-set.csv.gz"
    lines = gzip.decompress(src.read_bytes()).decode("utf-8-sig").splitlines()
    orig = tmp_path / "orig.csv"
    orig.write_text("\n".join(lines[: rows + 1]) + "\n")
    df = pl.read_csv(orig)
    names = {
        "dur": "Duration",
        "proto": "col_a",  # found from its values
        "service": "Service",
        "state": "col_b",
        "sbytes": "Src Bytes",
        "dbytes": "Dst Bytes",
        "spkts": "Src Pkts",
        "sttl": "S TTL",
        "attack_cat": "Attack Cat",
        "label": "Label",
        "id": "Id",
    }
    df = df.rename(names)
    order = list(np.random.default_rng(0).permutation(df.columns))
    renamed = tmp_path / "renamed.csv"
    df.select(order).write_csv(renamed)
    return orig, renamed


def test_a_known_layout_renamed_and_reordered_is_read_as_that_layout(
    shared_data: Path, tmp_path: Path
) -> None:
    orig, renamed = _renamed_unsw(shared_data, tmp_path)
    a = read_table(orig, "unsw-nb15")
    b = read_table(renamed, "csv", "Attack Cat")
    assert b.source == "unsw-nb15"
    assert b.frame.columns == a.frame.columns and b.categorical == a.categorical
    assert b.frame.equals(a.frame) and b.labels == a.labels
    assert any("recognised as the unsw-nb15 layout" in n and "proto" in n for n in b.notes)
    assert any("'Id' not used as a feature: identifier" in n for n in b.notes)


def test_unrelated_columns_are_not_taken_for_a_known_layout() -> None:
    df = pl.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"], "dur": [0.1, 0.2]})
    assert recognise(df) is None


def test_training_frame_keeps_the_reader_column_order(shared_data: Path) -> None:
    t = read_table(shared_data / "nsl-kdd" / "KDDTest-21.txt.gz", "nsl-kdd")
    frame, cats, labels = training_frame([t])
    assert cats == ["protocol_type", "service", "flag"] == list(t.categorical)
    assert frame.columns == t.frame.columns and labels == t.labels
