"""CLI end to end: train/detect flows (predictions, alerts in the store), train devices, identify."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

from typer.testing import CliRunner

from healthsec.app import open_store
from healthsec.cli import app

runner = CliRunner()


def _subset(src: Path, dst: Path, every: int) -> int:
    with gzip.open(src, "rt") as fh:
        lines = [line for i, line in enumerate(fh) if i % every == 0]
    dst.write_text("".join(lines))
    return len(lines)


def test_train_and_detect_flows(tmp_path: Path, shared_data: Path) -> None:
    kdd = shared_data / "nsl-kdd"
    train = tmp_path / "train.txt"
    test = tmp_path / "test.txt"
    _subset(kdd / "KDDTrain+_20Percent.txt.gz", train, 5)
    n_test = _subset(kdd / "KDDTest+.txt.gz", test, 25)
    model = tmp_path / "model"
    r = runner.invoke(app, ["train", "flows", str(train), "--input-format", "nsl-kdd", "--model", str(model)])
    assert r.exit_code == 0, r.output
    assert "parts: supervised+iforest+autoencoder" in r.output
    assert (model / "binary.lgb.txt").is_file() and (model / "model_card.json").is_file()
    assert not any(p.suffix in (".pkl", ".pickle", ".joblib") for p in model.iterdir())
    db = tmp_path / "hs.db"
    out = tmp_path / "pred.csv"
    r = runner.invoke(
        app,
        [
            "detect",
            "flows",
            str(test),
            "--input-format",
            "nsl-kdd",
            "--model",
            str(model),
            "--out",
            str(out),
            "--db",
            str(db),
        ],
    )
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == n_test
    assert [int(x["record"]) for x in rows] == list(range(1, n_test + 1))  # input order
    flagged = sum(int(x["is_attack"]) for x in rows)
    assert all(x["predicted"] == "benign" for x in rows if x["is_attack"] == "0")
    attacks = sum(x["label"] != "benign" for x in rows)
    hits = sum(x["label"] != "benign" and x["is_attack"] == "1" for x in rows)
    assert hits / attacks > 0.75
    store = open_store(str(db))
    stored = store.alerts.all()
    assert len(stored) == flagged > 0
    assert all(a.detector == "flow-ensemble" and a.explanation for a in stored)
    store.close()


def test_detect_reports_missing_columns_and_bad_model(tmp_path: Path, shared_data: Path) -> None:
    train = tmp_path / "t.csv"
    lines = ["dur,bytes,proto,label"] + [
        f"{i % 7},{100 + i},tcp,{'attack' if i % 3 == 0 else 'benign'}" for i in range(300)
    ]
    train.write_text("\n".join(lines) + "\n")
    model = tmp_path / "m"
    r = runner.invoke(
        app,
        [
            "train",
            "flows",
            str(train),
            "--input-format",
            "csv",
            "--label-column",
            "label",
            "--model",
            str(model),
        ],
    )
    assert r.exit_code == 0, r.output
    wider = tmp_path / "w.csv"
    wider.write_text("dur,bytes,proto,extra_col,label\n1,100,tcp,5,benign\n2,1e9,udp,6,attack\n")
    r = runner.invoke(
        app,
        [
            "detect",
            "flows",
            str(wider),
            "--input-format",
            "csv",
            "--label-column",
            "label",
            "--model",
            str(model),
            "--out",
            str(tmp_path / "w.csv.out"),
            "--no-alerts",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "1 column(s) the model does not use, ignored: extra_col" in r.output
    assert len(list(csv.DictReader((tmp_path / "w.csv.out").open()))) == 2
    other = tmp_path / "o.csv"
    other.write_text("dur,proto\n1,tcp\n")
    r = runner.invoke(
        app,
        [
            "detect",
            "flows",
            str(other),
            "--input-format",
            "csv",
            "--model",
            str(model),
            "--out",
            str(tmp_path / "p.csv"),
            "--no-alerts",
        ],
    )
    assert r.exit_code == 1
    assert "missing columns bytes" in r.output
    r = runner.invoke(
        app,
        [
            "detect",
            "flows",
            str(other),
            "--input-format",
            "csv",
            "--model",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "p.csv"),
            "--no-alerts",
        ],
    )
    assert r.exit_code == 1 and "model directory not found" in r.output


def test_train_devices_and_identify(tmp_path: Path, shared_data: Path) -> None:
    root = shared_data / "medical-device-traffic-unr" / "pcaps"
    train = [
        p
        for d in ("kardiamobile", "guardianalertsystem")
        for p in sorted((root / d).rglob("[2-4]_1.pcap.gz"))
    ]
    model = tmp_path / "dev"
    r = runner.invoke(app, ["train", "devices", *map(str, train), "--model", str(model)])
    assert r.exit_code == 0, r.output
    assert "2 devices" in r.output
    probe = [root / "kardiamobile" / "3_2.pcap.gz", root / "babymonitor" / "wifi" / "3_2.pcap.gz"]
    empty = root / "kardiamobile" / "1_1.pcap.gz"  # empty upstream
    out = tmp_path / "devices.csv"
    db = tmp_path / "inv.db"
    args = ["identify", *map(str, [*probe, empty]), "--model", str(model), "--out", str(out)]
    r = runner.invoke(app, [*args, "--inventory", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "1 identified device(s) recorded in the asset inventory" in r.output
    assets = open_store(str(db)).assets.list()
    assert [(a.device_type, a.role) for a in assets] == [("kardiamobile", "medical-device")]
    assert assets[0].ip is not None
    got = {Path(x["file"]).parent.name + "/" + Path(x["file"]).name: x for x in csv.DictReader(out.open())}
    assert got["kardiamobile/3_2.pcap.gz"]["device"] == "kardiamobile"
    assert got["wifi/3_2.pcap.gz"]["device"] == "unknown"
    assert got["kardiamobile/1_1.pcap.gz"]["device"] == "unknown"
    assert "empty" in got["kardiamobile/1_1.pcap.gz"]["reason"]


def test_input_format_and_its_deprecated_spelling(tmp_path: Path) -> None:
    """--input-format is what is read; the old --format still works here, with one warning line."""
    base = ["train", "flows", str(tmp_path / "x.csv"), "--model", str(tmp_path / "m"), "--fpr", "0.9"]
    r = runner.invoke(app, [*base, "--format", "csv"])
    assert r.exit_code == 1
    assert r.output.count("--format for the input format is deprecated; use --input-format") == 1, r.output
    assert (
        "--fpr must be between" in r.output
    )  # the old spelling was taken: the run went on to the next check
    r = runner.invoke(app, [*base, "--input-format", "csv"])
    assert r.exit_code == 1 and "deprecated" not in r.output and "--fpr must be between" in r.output
    r = runner.invoke(app, [*base, "--input-format", "zeek", "--format", "csv"])
    assert r.exit_code == 1 and "--input-format 'zeek' and --format 'csv' disagree" in r.output, r.output
    r = runner.invoke(app, base)
    assert r.exit_code == 1 and "missing option --input-format" in r.output, r.output
