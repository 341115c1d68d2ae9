"""`healthsec train telemetry` and `healthsec detect telemetry` on TON_IoT GPS subsets (written to tmp)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

from typer.testing import CliRunner

from healthsec.app import open_store
from healthsec.cli import app


def _subset(shared_data: Path, out: Path, start: int, step: int, extra: list[str] | None = None) -> int:
    src = shared_data / "ton-iot-telemetry" / "Train_Test_IoT_GPS_Tracker.csv.gz"
    lines = gzip.decompress(src.read_bytes()).decode("utf-8-sig").splitlines()
    body = lines[1 + start :: step]
    out.write_text("\n".join([lines[0], *body, *(extra or [])]) + "\n")
    return len(body) + len(extra or [])


def test_train_then_detect(shared_data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    train_csv = tmp_path / "train.csv"
    _subset(shared_data, train_csv, 0, 4)
    model = tmp_path / "model"
    result = runner.invoke(
        app, ["train", "telemetry", str(train_csv), "--input-format", "ton-iot", "--out", str(model)]
    )
    assert result.exit_code == 0, result.output
    assert "features: latitude, longitude" in result.output
    meta = json.loads((model / "meta.json").read_text())
    assert meta["classes"][0] == "benign"
    assert "date" not in meta["features"]
    assert (model / "model.txt").read_text().startswith("tree")

    test_csv = tmp_path / "test.csv"
    n = _subset(shared_data, test_csv, 1, 20, extra=["31-Mar-19,10:00:00,not-a-number,1.0,0,normal"])
    out = tmp_path / "pred.csv"
    db = tmp_path / "hs.db"
    result = runner.invoke(
        app,
        [
            "detect",
            "telemetry",
            str(test_csv),
            "--input-format",
            "ton-iot",
            "--model",
            str(model),
            "--out",
            str(out),
            "--db",
            str(db),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == n  # one row per input row, in order, bad rows included
    assert {"score", "is_attack", "predicted"} <= set(rows[0])
    assert [int(r["record"]) for r in rows[:-1]] == list(range(2, n + 1))
    assert {r["file"] for r in rows} == {"test.csv"}
    assert rows[-1]["score"] == ""
    assert "latitude" in rows[-1]["error"]
    scored = rows[:-1]
    attacks = [r for r in scored if r["label"] != "benign"]
    caught = sum(r["is_attack"] == "1" for r in attacks) / len(attacks)
    assert caught > 0.5
    assert all(r["predicted"] == "benign" for r in scored if r["is_attack"] == "0")
    assert "against the file's labels: accuracy" in result.output
    store = open_store(str(db))
    try:
        assert store.alerts.count() > 0
    finally:
        store.close()


def test_detect_with_a_missing_model_fails_clearly(tmp_path: Path) -> None:
    data = tmp_path / "x.csv"
    data.write_text("ts,hr\n2024-01-01T00:00:00Z,70\n")
    result = CliRunner().invoke(
        app,
        [
            "detect",
            "telemetry",
            str(data),
            "--input-format",
            "csv",
            "--model",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "p.csv"),
            "--no-store",
        ],
    )
    assert result.exit_code == 1
    assert "cannot load model" in result.output


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "x.csv"
    data.write_text("ts,hr\n")
    result = CliRunner().invoke(
        app, ["train", "telemetry", str(data), "--input-format", "xml", "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "--input-format must be one of" in result.output


def test_detect_refuses_a_file_of_another_device_type(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from healthsec.detect.clinical.telemetry_model import TelemetryClassifier
    from healthsec.model import DeviceReading

    t = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        DeviceReading(id=f"r{k}", ts=t, source="s", device_id="d", metrics={"latitude": float(k)})
        for k in range(40)
    ]
    clf = TelemetryClassifier(num_boost_round=5).fit(rows, ["benign"] * 20 + ["ddos"] * 20)
    model = tmp_path / "m"
    model.mkdir()
    (model / "meta.json").write_text(clf.meta_json())
    (model / "model.txt").write_text(clf.model_text())
    data = tmp_path / "weather.csv"
    data.write_text("ts,temperature,pressure\n2024-01-01T00:00:00Z,20.5,1013\n")
    result = CliRunner().invoke(
        app,
        [
            "detect",
            "telemetry",
            str(data),
            "--input-format",
            "csv",
            "--model",
            str(model),
            "--out",
            str(tmp_path / "p.csv"),
            "--no-store",
        ],
    )
    assert result.exit_code == 1
    assert "trained on latitude" in result.output
