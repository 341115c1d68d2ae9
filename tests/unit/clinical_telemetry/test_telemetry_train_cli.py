"""`healthsec train telemetry --model DIR` (``--out`` kept as a hidden alias) and malformed training files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from healthsec.cli import app

HEADER = "date,time,temperature,label,type"


def _write(path: Path, n: int = 120) -> Path:
    rows = [HEADER]
    for i in range(n):
        attack = (i // 20) % 2 == 1
        value = 20 + (i % 20) * (1.5 if attack else 0.01)
        rows.append(
            f"01-Apr-19,{10 + i // 3600}:{(i // 60) % 60:02d}:{i % 60:02d},{value:.2f},"
            f"{int(attack)},{'ddos' if attack else 'normal'}"
        )
    path.write_text("\n".join(rows) + "\n")
    return path


def test_train_takes_model_like_the_other_train_commands(tmp_path: Path) -> None:
    data = _write(tmp_path / "pump.csv")
    res = CliRunner().invoke(app, ["train", "telemetry", str(data), "--model", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    assert meta["features"] == ["temperature"] and meta["feature_set"] in ("values", "behaviour")
    assert "cross-validation" in res.output


def test_out_still_works_and_is_hidden(tmp_path: Path) -> None:
    data = _write(tmp_path / "pump.csv")
    res = CliRunner().invoke(app, ["train", "telemetry", str(data), "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m" / "model.txt").is_file()
    help_text = CliRunner().invoke(app, ["train", "telemetry", "--help"], terminal_width=200).output
    assert "--model" in help_text and "--out" not in help_text


def test_no_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["train", "telemetry", str(_write(tmp_path / "pump.csv"))])
    assert res.exit_code != 0
    assert "--model DIR is required" in res.output


def test_a_file_with_no_reading_columns_is_refused_by_name(tmp_path: Path) -> None:
    p = tmp_path / "nometrics.csv"
    p.write_text("date,time,label,type\n01-Apr-19,10:00:00,0,normal\n01-Apr-19,10:00:05,1,ddos\n")
    res = CliRunner().invoke(app, ["train", "telemetry", str(p), "--model", str(tmp_path / "m")])
    assert res.exit_code != 0
    assert "no metric values" in res.output
    assert not (tmp_path / "m").exists()


def test_a_file_missing_the_time_column_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "notime.csv"
    p.write_text("date,temperature,label,type\n01-Apr-19,20.1,0,normal\n")
    res = CliRunner().invoke(app, ["train", "telemetry", str(p), "--model", str(tmp_path / "m")])
    assert res.exit_code != 0
    assert "lacks 'date' and 'time'" in res.output
    assert "no readings to train on" in res.output
