"""The CLI end to end: detect logs -> alert JSON lines + store; rules check/test report file and reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from healthsec.app import open_store
from healthsec.cli import app

RULE = "rules/windows/process_creation/proc_creation_win_curl_custom_user_agent.yml"
LOG = (
    "regression_data/rules/windows/process_creation/proc_creation_win_curl_custom_user_agent/"
    "85de1f22-d189-44e4-8239-dc276b45379b.evtx.gz"
)


def test_detect_logs_writes_alerts_and_reports_bad_records(sigma_dir: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(sigma_dir / RULE, rules)
    (rules / "broken.yml").write_text("title: B\nlogsource: {product: windows}\ndetection:\n  s: [1\n")
    bad = tmp_path / "bad.json"
    bad.write_text('{"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational"\n')
    out, db = tmp_path / "alerts.jsonl", tmp_path / "hs.db"
    res = CliRunner().invoke(
        app,
        [
            "detect",
            "logs",
            str(sigma_dir / LOG),
            str(bad),
            "--rules",
            str(rules),
            "--out",
            str(out),
            "--db",
            str(db),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "1 loaded, 0 unsupported, 1 invalid" in res.output
    assert f"{bad} record 1: invalid JSON" in res.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 1
    a = lines[0]
    assert a["rule_id"] == "85de1f22-d189-44e4-8239-dc276b45379b"
    # the rule's tag attack.execution (TA0002), named by the engine's ATT&CK enrichment as the service does
    assert a["level"] == "medium" and a["techniques"] == [] and a["tactics"] == ["execution"]
    assert a["record"] == f"{sigma_dir / LOG}#1"
    assert "CommandLine" in a["matched"]
    store = open_store(str(db))  # the same org the command used
    try:
        stored = store.alerts.all()
        assert [s.id for s in stored] == [a["alert_id"]]
    finally:
        store.close()


def test_rules_check_and_test(sigma_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "title: B\nlogsource:\n  product: windows\ndetection:\n  s:\n    a: [1\n  condition: s\n"
    )
    res = CliRunner().invoke(app, ["rules", "check", "--rules", str(broken)])
    assert res.exit_code == 1 and str(broken) in res.output and "line" in res.output
    ok = CliRunner().invoke(app, ["rules", "test", str(sigma_dir / RULE), str(sigma_dir / LOG)])
    assert ok.exit_code == 0, ok.output
    assert "1 match(es) in 1 record(s)" in ok.output
    other = sigma_dir / "rules/windows/process_creation/proc_creation_win_wmic_terminate_application.yml"
    miss = CliRunner().invoke(app, ["rules", "test", str(other), str(sigma_dir / LOG)])
    assert miss.exit_code == 1 and "0 match(es)" in miss.output
