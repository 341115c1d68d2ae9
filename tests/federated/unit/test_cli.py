"""`healthsec federate` refuses unsafe or malformed set-ups with one clear line, before any network I/O."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from healthsec.cli import app
from healthsec.detect.ml.features import FeatureSchema

runner = CliRunner()


def _out(r: object) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(str(getattr(r, "output", "")).split())


def _schema(tmp_path: Path, schema: FeatureSchema) -> Path:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema.to_dict()))
    return path


def test_serve_refuses_robust_aggregation_under_secure_aggregation(
    tmp_path: Path, schema: FeatureSchema
) -> None:
    s = _schema(tmp_path, schema)
    r = runner.invoke(app, ["federate", "serve", "--schema", str(s), "--insecure", "--aggregation", "krum"])
    assert r.exit_code == 1
    assert "krum needs each member's update" in _out(r) and "--no-secagg" in _out(r)
    r = runner.invoke(
        app, ["federate", "serve", "--schema", str(s), "--insecure", "--aggregation", "mean-ish"]
    )
    assert r.exit_code == 1 and "choose one of fedavg, trimmed-mean, median, krum" in _out(r)
    r = runner.invoke(app, ["federate", "serve", "--schema", str(s)])
    assert r.exit_code == 1 and "--certs is required" in _out(r)


def test_insecure_is_loopback_only(tmp_path: Path, schema: FeatureSchema) -> None:
    s = _schema(tmp_path, schema)
    r = runner.invoke(
        app,
        ["federate", "serve", "--schema", str(s), "--insecure", "--address", "0.0.0.0:19999", "--no-secagg"],
    )
    assert r.exit_code == 1 and "loopback only" in _out(r)
    data = tmp_path / "d.csv"
    data.write_text("f0,label\n1,benign\n")
    r = runner.invoke(
        app,
        ["federate", "join", "--name", "a", str(data), "-f", "csv", "--schema", str(s),
         "--out", str(tmp_path / "o"),
         "--insecure", "--address", "10.1.2.3:9092"],
    )  # fmt: skip
    assert r.exit_code == 1 and "loopback only" in _out(r)


def test_join_refuses_a_non_positive_dp_setting(tmp_path: Path, schema: FeatureSchema) -> None:
    s = _schema(tmp_path, schema)
    data = tmp_path / "d.csv"
    data.write_text("f0,label\n1,benign\n")
    for flag, value in (
        ("--dp-ae-noise", "0"),
        ("--dp-ae-noise", "-2"),
        ("--clip", "0"),
        ("--dp-batch", "0"),
    ):
        r = runner.invoke(
            app,
            ["federate", "join", "--name", "a", str(data), "-f", "csv", "--schema", str(s),
             "--out", str(tmp_path / "o"), "--insecure", flag, value],
        )  # fmt: skip
        assert r.exit_code == 1 and "--dp-ae-noise > 0" in _out(r), (flag, value, _out(r))


def test_join_names_the_file_missing_columns(tmp_path: Path, schema: FeatureSchema) -> None:
    s = _schema(tmp_path, schema)
    data = tmp_path / "hospital.csv"
    data.write_text("f0,f1,label\n1,2,benign\n3,4,attack\n")
    r = runner.invoke(
        app,
        ["federate", "join", "--name", "a", str(data), "-f", "csv", "--label-column", "label",
         "--schema", str(s),
         "--out", str(tmp_path / "o"), "--insecure"],
    )  # fmt: skip
    assert r.exit_code == 1
    assert "hospital.csv" in _out(r) and "missing columns" in _out(r) and "f2" in _out(r)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = runner.invoke(
        app,
        [
            "federate",
            "join",
            "--name",
            "a",
            str(data),
            "-f",
            "csv",
            "--schema",
            str(bad),
            "--out",
            "o",
            "--insecure",
        ],
    )
    assert r.exit_code == 1 and "bad.json: not a readable feature schema" in _out(r)


def test_certs_refuses_a_bad_member_name_and_an_unknown_revocation(tmp_path: Path) -> None:
    r = runner.invoke(app, ["federate", "certs", str(tmp_path / "c"), "--member", "St Mary's"])
    assert r.exit_code == 1 and "member name" in _out(r)
    r = runner.invoke(app, ["federate", "certs", str(tmp_path / "c"), "--member", "stmarys"])
    assert r.exit_code == 0 and "members/stmarys.pem" in _out(r)
    r = runner.invoke(app, ["federate", "certs", str(tmp_path / "c"), "--revoke", "nobody"])
    assert r.exit_code == 1 and "no readable certificate for member 'nobody'" in _out(r)
