"""End to end: ``healthsec demo`` as a user runs it, checked against the simulator's ground truth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from healthsec.sim import CAMPAIGNS


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "healthsec.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
    )


def test_demo_detects_every_campaign_and_is_idempotent(tmp_path: Path) -> None:
    out, db = tmp_path / "out", tmp_path / "demo.db"
    first = run("demo", "--seed", "7", "--out", str(out), "--db", str(db))
    assert first.returncode == 0, first.stderr
    assert "no SigmaHQ rules found" not in first.stderr  # run from the checkout: the SigmaHQ set is found
    summary = json.loads((out / "summary.json").read_text())
    assert {c["name"] for c in summary["campaigns"]} == set(CAMPAIGNS)
    assert all(c["detected"] for c in summary["campaigns"]), summary["campaigns"]
    assert all(c["first_alert_seconds"] is not None for c in summary["campaigns"])
    assert summary["alert_precision"] > 0.8 and summary["alert_recall"] > 0.8, summary
    assert summary["events"] > 10_000 and summary["incidents"] <= 3 * len(CAMPAIGNS)
    lines = (out / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == summary["alerts"]
    assert all(json.loads(x)["explanation"] for x in lines)
    page = (out / "report.html").read_text()
    assert "<svg" in page and "ransomware" in page and "<script" not in page and "http://" not in page

    second = run("demo", "--seed", "7", "--out", str(out), "--db", str(db))
    assert second.returncode == 0, second.stderr
    again = json.loads((out / "summary.json").read_text())
    assert again["new_events_stored"] == 0 and again["new_alerts_stored"] == 0
    assert again["alerts"] == summary["alerts"]


def test_unreachable_database_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    res = run("demo", "--out", str(tmp_path), "--db", "postgresql://u@127.0.0.1:1/x")
    assert res.returncode == 1
    assert "cannot open database" in res.stderr and "Traceback" not in res.stderr


def test_demo_says_when_the_sigmahq_rules_are_not_found(tmp_path: Path) -> None:
    # run from a folder with no ../shared/data beside it: the demo would quietly raise fewer alerts
    res = run("demo", "--out", str(tmp_path / "o"), "--db", "postgresql://u@127.0.0.1:1/x", cwd=tmp_path)
    assert "no SigmaHQ rules found" in res.stderr and "HEALTHSEC_SHARED_DATA" in res.stderr


def test_help_lists_the_demo() -> None:
    res = run("--help")
    assert res.returncode == 0 and "demo" in res.stdout
