"""``healthsec alerts list|show|triage`` and the incident activity commands: thin adapters, one error line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from typer.testing import CliRunner
from usecase_helpers import alert

from healthsec.cli import app
from healthsec.model import Severity
from healthsec.store import Store

runner = CliRunner()
LONG = "Implausible or spoofed telemetry from infusion_pump pump-13 during a night shift on the ICU ward"


def _run(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args), env={"COLUMNS": "80"})
    return res.exit_code, res.output


def _db(tmp_path: Path) -> str:
    db = str(tmp_path / "h.db")
    store = Store.open(db)
    long = alert("alert-0123456789abcdef01234567", "pump-13", 5, severity=Severity.CRITICAL, detector="iomt")
    store.alerts.add_many([alert("a1", "ws-001", 0), dataclasses.replace(long, title=LONG)])
    store.close()
    return db


def test_list_fits_80_columns_without_cutting_words(tmp_path: Path) -> None:
    db = _db(tmp_path)
    code, out = _run("alerts", "list", "--db", db)
    assert code == 0, out
    assert max(len(line) for line in out.splitlines()) <= 80
    words = " ".join(out.split())
    assert "alert-0123456789abcdef01234567" in words
    for word in LONG.split():
        assert f" {word} " in f" {words} ", word  # every word whole, none cut with an ellipsis
    assert "…" not in out
    code, out = _run("alerts", "list", "--db", db, "--severity", "critical", "--format", "json")
    page = json.loads(out)
    assert [a["id"] for a in page["items"]] == ["alert-0123456789abcdef01234567"]
    assert page["total"] == 1
    code, out = _run("alerts", "list", "--db", db, "--severity", "urgent")
    assert code == 1
    assert "--severity must be one of" in out
    code, out = _run("alerts", "list", "--db", db, "--format", "xml")
    assert code == 1


def test_show_and_triage(tmp_path: Path) -> None:
    db = _db(tmp_path)
    code, out = _run("alerts", "show", "nope", "--db", db)
    assert (code, out.strip()) == (1, "error: no alert 'nope'")
    code, out = _run("alerts", "triage", "a1", "nope", "--verdict", "fp", "--db", db)
    assert (code, out.strip()) == (1, "error: no alert 'nope'")
    code, out = _run("alerts", "triage", "a1", "--verdict", "maybe", "--db", db)
    assert code == 1
    assert "verdict 'maybe'" in out
    code, out = _run(
        "alerts", "triage", "a1", "--verdict", "fp", "--actor", "ana", "--comment", "backup job", "--db", db
    )
    assert code == 0, out
    assert "1 alert marked false_positive by ana" in out
    shown = json.loads(_run("alerts", "show", "a1", "--format", "json", "--db", db)[1])
    assert shown["verdict"]["verdict"] == "false_positive"
    assert shown["history"][0]["comment"] == "backup job"
    untriaged = json.loads(
        _run("alerts", "list", "--verdict", "untriaged", "--format", "json", "--db", db)[1]
    )
    assert [a["id"] for a in untriaged["items"]] == ["alert-0123456789abcdef01234567"]


def test_incident_status_assign_comment(tmp_path: Path) -> None:
    from usecase_helpers import T0

    from healthsec.model import Incident

    db = _db(tmp_path)
    store = Store.open(db)
    store.incidents.upsert_many(
        [
            Incident(
                id="inc-1",
                title="t",
                first_seen=T0,
                last_seen=T0,
                severity=Severity.HIGH,
                score=0.5,
                alert_ids=("a1",),
            )
        ]
    )
    store.close()
    assert _run("incidents", "assign", "inc-1", "ana", "--db", db)[0] == 0
    assert _run("incidents", "comment", "inc-1", "looking", "--actor", "ana", "--db", db)[0] == 0
    assert _run("incidents", "status", "inc-1", "contained", "--db", db)[0] == 0
    code, out = _run("incidents", "status", "inc-1", "solved", "--db", db)
    assert code == 1
    assert "status 'solved'" in out
    assert _run("incidents", "assign", "ghost", "ana", "--db", db)[0] == 1
    shown = json.loads(_run("incidents", "show", "inc-1", "--json", "--db", db)[1])
    assert shown["assignee"] == "ana"
    assert shown["status"] == "contained"
    assert [h["kind"] for h in shown["activity"]] == ["assign", "comment", "status"]
    listed = _run("incidents", "list", "--assignee", "ana", "--format", "json", "--db", db)[1]
    assert [r["id"] for r in json.loads(listed)] == ["inc-1"]
    # --json is the hidden older spelling of --format json: same output
    assert _run("incidents", "list", "--assignee", "ana", "--json", "--db", db)[1] == listed
    code, out = _run("incidents", "list", "--format", "xml", "--db", db)
    assert code == 1 and "--format must be table or json" in out
    code, out = _run("incidents", "list", "--db", db, "--status", "weird")
    assert code == 1
