"""`healthsec scan fhir` end to end over generated AuditEvents and the real Synthea directory."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from healthsec.app import open_store
from healthsec.cli import app
from healthsec.commands import groups
from healthsec.ingest.fhir import Directory
from healthsec.testing.access_attacks import EPOCH, attack_cases, benign_accesses, to_audit_event


def test_scan_fhir_reports_attacks_and_bad_lines(
    synthea: Directory, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(groups.console, "width", 60)  # skipped-record lines stay whole on narrow terminals
    ctx = synthea.context
    base = tmp_path / "baseline.ndjson"
    base.write_bytes(b"".join(orjson.dumps(to_audit_event(e)) + b"\n" for e in benign_accesses(ctx, days=7)))
    cases = attack_cases(ctx, synthea.patients, day=EPOCH + timedelta(days=8))
    today = tmp_path / "today.ndjson"
    lines = [orjson.dumps(to_audit_event(e)).decode() for c in cases for e in c.events]
    lines.insert(3, json.dumps({"resourceType": "AuditEvent", "action": "R"}))
    today.write_text("\n".join(lines) + "\n")
    db = tmp_path / "hs.db"
    key_file = tmp_path / "patient.key"
    key_file.write_text("a-patient-secret-of-32-bytes-or-so")
    vip = sorted(cases[1].context.vip_patients)[0]
    result = CliRunner().invoke(
        app,
        [
            "scan",
            "fhir",
            str(today),
            "--baseline",
            str(base),
            "--vip",
            vip,
            "--db",
            str(db),
            "--directory",
            str(shared_data / "fhir-bulk-synthea-10-patients"),
        ],
        env={"HEALTHSEC_PATIENT_KEY_FILE": str(key_file), "COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    n = sum(len(c.events) for c in cases)
    assert f"AuditEvents: {n} accepted, 1 rejected" in result.output
    assert f"{today} record 4: invalid AuditEvent" in result.output
    for title in (
        "VIP patient record",
        "Mass FHIR $export",
        "Off-hours bulk read",
        "own surname",
    ):
        assert title.lower() in result.output.lower()
    assert vip not in result.output  # patient ids are shown as keyed tokens only
    store = open_store(str(db))
    try:
        stored = store.alerts.all()
        assert {a.features["rule"] for a in stored} >= {
            "vip-snooping",
            "mass-export",
            "off-hours-bulk",
            "same-surname",
            "no-care-relationship",
            "rate-burst",
        }
        assert store.events.count("access") == n
    finally:
        store.close()


def test_scan_fhir_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a narrow terminal must not split the message (Rich wraps at the console width otherwise)
    monkeypatch.setattr(groups.err_console, "width", 40)
    result = CliRunner().invoke(app, ["scan", "fhir", str(tmp_path / "nope.ndjson"), "--no-store"])
    assert result.exit_code == 1
    assert "no such file" in result.output


def test_scan_fhir_format_json_prints_only_alerts_on_stdout(
    synthea: Directory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = synthea.context
    base = tmp_path / "baseline.ndjson"
    base.write_bytes(b"".join(orjson.dumps(to_audit_event(e)) + b"\n" for e in benign_accesses(ctx, days=7)))
    cases = attack_cases(ctx, synthea.patients, day=EPOCH + timedelta(days=8))
    today = tmp_path / "today.ndjson"
    today.write_bytes(b"".join(orjson.dumps(to_audit_event(e)) + b"\n" for c in cases for e in c.events))
    key_file = tmp_path / "patient.key"
    key_file.write_text("a-patient-secret-of-32-bytes-or-so")
    args = ["scan", "fhir", str(today), "--baseline", str(base), "--no-store", "--format", "json"]
    result = CliRunner().invoke(app, args, env={"HEALTHSEC_PATIENT_KEY_FILE": str(key_file)})
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and all(r["detector"] for r in rows)
    assert "AuditEvents:" in result.stderr and "AuditEvents:" not in result.stdout
