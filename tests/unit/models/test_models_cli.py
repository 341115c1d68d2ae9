"""CLI end to end: train telemetry registers a candidate; models list/show/promote/retire; bad cases."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from healthsec.cli import app
from healthsec.store import Store
from healthsec.store.schema_models import model_artefacts, model_files

runner = CliRunner()


@pytest.fixture(scope="module")
def train_csv(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = shared_data / "ton-iot-telemetry" / "Train_Test_IoT_GPS_Tracker.csv.gz"
    lines = gzip.decompress(src.read_bytes()).decode("utf-8-sig").splitlines()
    out = tmp_path_factory.mktemp("tel") / "train.csv"
    out.write_text("\n".join([lines[0], *lines[1::12]]) + "\n")
    return out


def _train(csv: Path, model: Path, db: Path, *extra: str) -> str:
    args = ["train", "telemetry", str(csv), "--input-format", "ton-iot", "--out", str(model), "--db", str(db)]
    r = runner.invoke(app, [*args, *extra])
    assert r.exit_code == 0, r.output
    return r.output


def _run(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.output


def test_train_registers_then_models_commands(train_csv: Path, tmp_path: Path) -> None:
    db = tmp_path / "hs.db"
    out = _train(train_csv, tmp_path / "m1", db)
    assert "registered model telemetry version 1 (telemetry-v1, candidate)" in out
    out = _train(train_csv, tmp_path / "m2", db, "--promote", "--seed", "1")
    assert "registered model telemetry version 2 (telemetry-v2, promoted)" in out

    code, out = _run("models", "list", "--db", str(db), "--format", "json")
    assert code == 0, out
    listed = json.loads(out)
    assert [(a["id"], a["status"]) for a in listed] == [
        ("telemetry-v1", "candidate"),
        ("telemetry-v2", "promoted"),
    ]
    code, out = _run("models", "list", "--db", str(db))
    assert code == 0 and "telemetry-v2" in out and "promoted" in out

    code, out = _run("models", "show", "telemetry-v1", "--db", str(db), "--format", "json")
    shown = json.loads(out)
    assert shown["features"] == ["latitude", "longitude"]
    assert shown["formats"] == ["json", "lightgbm-text"]
    digest = hashlib.sha256(train_csv.read_bytes()).hexdigest()
    assert shown["training_fingerprint"] == hashlib.sha256(digest.encode()).hexdigest()
    assert shown["provenance"]["training_inputs"] == [{"file": "train.csv", "sha256": digest}]
    assert {"python", "lightgbm"} <= set(shown["libraries"])
    code, out = _run("models", "show", "telemetry", "--db", str(db))
    assert code == 0 and "telemetry-v2" in out  # a kind shows its promoted version

    code, out = _run("models", "promote", "telemetry", "1", "--db", str(db))
    assert code == 0 and "promoted telemetry-v1" in out
    code, out = _run("models", "list", "--db", str(db), "--format", "json", "--status", "retired")
    assert [a["id"] for a in json.loads(out)] == ["telemetry-v2"]
    code, out = _run("models", "retire", "telemetry", "1", "--db", str(db))
    assert code == 0 and "retired telemetry-v1" in out


def test_promote_unknown_version_fails_in_one_line(train_csv: Path, tmp_path: Path) -> None:
    db = tmp_path / "hs.db"
    _train(train_csv, tmp_path / "m", db)
    code, out = _run("models", "promote", "telemetry", "9", "--db", str(db))
    assert code == 1
    assert out.strip().splitlines() == [
        f"error: no telemetry model version 9 in organisation {Store.open(str(db)).org} (known versions: 1)"
    ]
    code, out = _run("models", "show", "flows-v4", "--db", str(db))
    assert code == 1 and "no model 'flows-v4'" in out


def test_corrupted_artefact_is_refused_and_the_promoted_one_stays(train_csv: Path, tmp_path: Path) -> None:
    db = tmp_path / "hs.db"
    _train(train_csv, tmp_path / "m1", db, "--promote")
    _train(train_csv, tmp_path / "m2", db)
    store = Store.open(str(db))
    with store.engine.begin() as conn:
        t = model_files
        conn.execute(
            update(t).where(t.c.artefact_id == "telemetry-v2", t.c.name == "model.txt").values(data=b"x")
        )
    code, out = _run("models", "promote", "telemetry", "2", "--db", str(db))
    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 1
    assert "model artefact telemetry-v2 (telemetry-classifier) refused" in lines[0]
    assert "model.txt does not match its recorded SHA-256" in lines[0]
    code, out = _run("models", "list", "--db", str(db), "--format", "json", "--status", "promoted")
    assert [a["id"] for a in json.loads(out)] == ["telemetry-v1"]


def test_schema_mismatch_is_refused(train_csv: Path, tmp_path: Path) -> None:
    db = tmp_path / "hs.db"
    _train(train_csv, tmp_path / "m1", db)
    store = Store.open(str(db))
    t = model_artefacts
    with store.engine.begin() as conn:
        body = conn.execute(t.select().where(t.c.id == "telemetry-v1")).one().body
        from healthsec.model.artefacts import features_hash

        body = {
            **body,
            "features": ["latitude", "altitude"],
            "features_hash": features_hash(["latitude", "altitude"]),
        }
        conn.execute(update(t).where(t.c.id == "telemetry-v1").values(body=body))
    code, out = _run("models", "promote", "telemetry", "1", "--db", str(db))
    assert code == 1
    assert "feature schema mismatch: recorded but absent altitude; present but not recorded longitude" in out


def test_register_failures_keep_the_model_dir(train_csv: Path, tmp_path: Path) -> None:
    model = tmp_path / "m"
    r = runner.invoke(
        app,
        [
            "train",
            "telemetry",
            str(train_csv),
            "--out",
            str(model),
            "--db",
            "postgresql://nobody@127.0.0.1:1/x",
        ],
    )
    assert r.exit_code == 1
    assert f"model written to {model} but not registered: cannot open database" in r.output
    assert (model / "model.txt").is_file()
    r = runner.invoke(
        app, ["train", "telemetry", str(train_csv), "--out", str(model), "--no-register", "--promote"]
    )
    assert r.exit_code == 1 and "--promote needs the model registered" in r.output
