"""``healthsec share stats``: OpenDP counts by technique, budget per month refused when spent, k-anonymity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthsec.cli import app
from healthsec.share.stix_sample import sample_alerts, sample_incident
from healthsec.store import Store

KEY = "5f" * 32


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "hs.db")
    store = Store.open(path, "local")
    alerts = sample_alerts(8)
    store.alerts.add_many(alerts)
    store.incidents.upsert_many([sample_incident(alerts[i : i + 2], id=f"inc-{i}") for i in range(0, 8, 2)])
    store.close()
    return path


def _run(db: str, out: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["share", "stats", "--db", db, *args, "--to", str(out)], env={"HEALTHSEC_SHARING_KEY": KEY}
    )
    return result.exit_code, " ".join(result.output.split())


def test_budget_is_spent_then_refused(db: str, tmp_path: Path) -> None:
    code, text = _run(db, tmp_path / "a.json", "--epsilon", "0.6", "--budget", "1", "--k", "4")
    assert code == 0, text
    assert "epsilon 0.6 spent, 0.4 of 1 left" in text
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["epsilon"] == 0.6
    assert doc["sensitivity"] == 5
    assert all(k.startswith("T") and v > 0 for k, v in doc["incidents_by_technique"].items())
    assert doc["incident_table"] == [{"severity": "high", "first_tactic": "discovery"}] * 4  # one class of 4
    code, text = _run(db, tmp_path / "b.json", "--epsilon", "0.6", "--budget", "1")
    assert code == 1
    assert "needs epsilon 0.6 but only 0.4 of 1 is left" in text
    assert not (tmp_path / "b.json").exists()


def test_small_classes_withhold_the_table(db: str, tmp_path: Path) -> None:
    code, text = _run(db, tmp_path / "a.json", "--epsilon", "0.1", "--k", "5")
    assert code == 0, text
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["incident_table"] is None
    assert doc["incident_table_withheld"].startswith("1 of 1 classes have fewer than 5 records")
