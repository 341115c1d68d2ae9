"""The SIEM commands as a user runs them: replay a Suricata file in process, outputs, rules export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from healthsec.cli import app
from healthsec.respond import siem

pytestmark = pytest.mark.integration


def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **env})
    return result.exit_code, result.output


def test_suricata_file_to_elastic_and_back(shared_data: Path, tmp_path: Path, http_receiver: Any) -> None:
    db = str(tmp_path / "cli.db")
    env = {
        "HEALTHSEC_DETECTORS": '["external-alerts"]',
        "HEALTHSEC_OUTPUTS": json.dumps(
            [{"name": "es", "transport": "elastic", "format": "ecs", "url": http_receiver.url}]
        ),
    }
    eve = tmp_path / "eve.json"
    good = (
        shared_data / "suricata-eve-samples/frankhassanabad-alerts/honeypot-2018-alerts-only.json"
    ).read_text()
    records = json.loads(good)
    eve.write_text(
        "\n".join([*(json.dumps(r) for r in records[:10]), "{broken", json.dumps({"x": 1})]) + "\n"
    )
    code, out = _cli(env, "replay", "--file", str(eve), "--input-format", "suricata", "--db", db)
    assert code == 0, out
    assert "10 events read (10 new), 2 parse error(s), 10 alerts" in out
    assert f"{eve} record 11: not JSON" in out and "record 12: EVE record: no event_type" in out
    code, out = _cli(env, "outputs", "list")
    assert "es: ecs over elastic to http://127.0.0.1" in out
    code, out = _cli(env, "notify", "dispatch", "--db", db)
    assert code == 0 and "sent" in out, out
    assert len(http_receiver.bulk) >= 10
    for _, doc in http_receiver.bulk:
        siem.validate_ecs(doc)
    code, out = _cli(env, "outputs", "backfill", "--db", db)
    assert "queued 0 message(s) for 10 alert(s)" in out  # all were queued by the engine already
    code, out = _cli(env, "outputs", "render", "--db", db, "--format", "cef", "--limit", "2")
    lines = out.strip().splitlines()
    assert len(lines) == 2 and all(x.startswith("CEF:0|healthsec|healthsec|") for x in lines)
    code, out = _cli(env, "replay", "--file", str(eve), "--input-format", "zeek", "--db", db)
    assert code != 0 and "unknown --input-format 'zeek'" in out


def test_rules_export_cli(shared_data: Path, tmp_path: Path) -> None:
    rules = shared_data / "sigma-rules/rules/windows/process_creation"
    some = tmp_path / "rules"
    some.mkdir()
    for p in sorted(rules.glob("proc_creation_win_fsutil*.yml")):
        (some / p.name).write_text(p.read_text())
    (some / "broken.yml").write_text("title: [unclosed\n")
    out_file, failures = tmp_path / "spl.jsonl", tmp_path / "fail.jsonl"
    code, out = _cli(
        {},
        "rules",
        "export",
        "--target",
        "splunk",
        "--rules",
        str(some),
        "--out",
        str(out_file),
        "--failures",
        str(failures),
    )
    assert code == 0, out
    queries = [json.loads(x) for x in out_file.read_text().splitlines()]
    assert queries and all("fsutil" in json.dumps(q["query"]).lower() for q in queries)
    assert f"{len(queries)} rules converted, 1 not converted" in out
    assert "broken.yml" in failures.read_text()
    code, out = _cli({}, "rules", "export", "--target", "nope", "--rules", str(some), "--out", str(out_file))
    assert code != 0 and "unknown target 'nope'" in out
