"""The analysis commands end to end on a temporary SQLite store: import, risk, paths, incidents, attack."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from healthsec.cli import app
from healthsec.model import Entity, EntityKind, Incident, Severity
from healthsec.store import Store

INVENTORY = """Hostname,IP Address,Device Type,Network Segment,PHI Records,Internet Facing,Remote Support
portal-web,10.0.0.5,web server,DMZ,,yes,
ehr-db,10.2.0.5,EHR database,Data Centre,250000,,
pump-icu-07,10.3.0.7,infusion pump,ICU Biomed VLAN,,,yes
monitor-icu-12,10.3.0.12,patient monitor,ICU Biomed VLAN,,,
"""
SCAN = """host,ip,cve,cvss vector,exploited
portal-web,10.0.0.5,CVE-2021-41773,CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:L/A:N,yes
ehr-db,10.2.0.5,CVE-2023-21839,CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H,no
"""

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.output


def test_import_risk_paths(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    (tmp_path / "inv.csv").write_text(INVENTORY)
    (tmp_path / "scan.csv").write_text(SCAN)
    code, out = _run("assets", "import", str(tmp_path / "inv.csv"), "--db", db, "--format", "json")
    assert code == 0, out
    assert json.loads(out) == {
        "imported": True,
        "rows": 4,
        "assets": 4,
        "vulnerabilities": 0,
        "ignored_columns": [],
    }
    code, out = _run("assets", "import", str(tmp_path / "scan.csv"), "--db", db)
    assert code == 0, out
    # the scanner file does not erase what the inventory said (zone, device type, exposure)
    code, out = _run("risk", "--top", "3", "--format", "json", "--db", db)
    ranked = json.loads(out)
    assert [r["asset_id"] for r in ranked] == ["ehr-db", "portal-web", "pump-icu-07"]
    assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
    pump = ranked[2]
    assert pump["criticality"] == "life_sustaining"
    assert any("vendor remote access" in f["detail"] for f in pump["likelihood_factors"])
    code, out = _run(
        "paths", "--to", "monitor-icu-12", "--top", "2", "--fixes", "2", "--format", "json", "--db", db
    )
    assert code == 0, out
    res = json.loads(out)
    assert len(res["paths"]) == 2
    assert res["paths"][0]["steps"][-1]["node"] == "asset:monitor-icu-12"
    assert res["fixes"][0]["risk_after"] < res["fixes"][0]["risk_before"]
    code, out = _run("paths", "--to", "nope", "--db", db)
    assert code == 1
    # a known-exploited catalogue flags the EHR finding; its risk rises and says why
    before = json.loads(_run("assets", "show", "10.2.0.5", "--format", "json", "--db", db)[1])["risk"][
        "score"
    ]
    (tmp_path / "kev.json").write_text(json.dumps({"vulnerabilities": [{"cveID": "CVE-2023-21839"}]}))
    code, out = _run("assets", "kev", str(tmp_path / "kev.json"), "--format", "json", "--db", db)
    assert json.loads(out) == {"catalogue_cves": 1, "findings_flagged": 1}
    shown = json.loads(_run("assets", "show", "ehr-db", "--format", "json", "--db", db)[1])
    assert shown["risk"]["score"] > before
    assert shown["vulnerabilities"][0]["known_exploited"] is True
    assert shown["asset"]["role"] == "EHR database"  # no role column: the device type stands in


def test_bad_inventory_imports_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    bad = tmp_path / "bad.csv"
    bad.write_text(INVENTORY + "pump-icu-07,10.3.0.99,infusion pump,ICU,,,\n")
    code, out = _run("assets", "import", str(bad), "--db", db)
    assert code == 1
    assert "bad.csv: row 6: asset 'pump-icu-07' differs" not in out  # plain inventory: a duplicate
    assert "bad.csv: row 6: duplicate asset 'pump-icu-07' (first at row 4)" in out
    assert "nothing was imported" in out
    code, out = _run("assets", "list", "--format", "json", "--db", db)
    assert json.loads(out) == []


def test_incidents_list_and_show(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    store = Store.open(db)
    ts = datetime(2026, 3, 2, 9, tzinfo=UTC)
    inc = Incident(
        id="inc-1",
        title="ransomware on ws-001",
        first_seen=ts,
        last_seen=ts,
        severity=Severity.CRITICAL,
        score=0.9,
        alert_ids=("a1",),
        entities=(Entity(EntityKind.HOST, "ws-001"),),
        techniques=("T1486", "T1685"),
        tactics=("impact",),
    )
    store.incidents.upsert_many([inc])
    store.close()
    code, out = _run("incidents", "list", "--format", "json", "--db", db)
    assert code == 0, out
    rows = json.loads(out)
    assert [r["id"] for r in rows] == ["inc-1"]
    assert rows[0]["risk"]["score"] > 0
    code, out = _run("incidents", "show", "inc-1", "--format", "json", "--db", db)
    shown = json.loads(out)
    assert shown["technique_names"][0]["name"] == "Data Encrypted for Impact"
    assert shown["technique_names"][1]["name"] is None  # v19 id, not in the pinned copy
    assert "M1053" in shown["mitigations"]
    # healthcare-targeting groups that use T1486 (top 3 of them, one technique each)
    assert shown["healthcare_groups"] == [["APT41", 1], ["INDRIK SPIDER", 1], ["TA453", 1]]
    code, out = _run("incidents", "show", "nope", "--db", db)
    assert code == 1


def test_attack_update_and_show(tmp_path: Path, shared_data: Path) -> None:
    ics = shared_data / "mitre-attack-stix" / "ics-attack-18.1-stix2.1.json.gz"
    out_path = tmp_path / "attack.json.gz"
    code, out = _run("attack", "update", str(ics), "--out", str(out_path), "--format", "json")
    assert code == 0, out
    res = json.loads(out)
    assert res["domains"] == ["enterprise-attack", "ics-attack"]  # Enterprise kept from the current copy
    assert out_path.stat().st_size == res["bytes"]
    code, out = _run("attack", "show", "attack.t1486", "--format", "json")
    assert json.loads(out)["technique"]["name"] == "Data Encrypted for Impact"
    code, out = _run("attack", "update", str(tmp_path / "missing.json"), "--out", str(out_path))
    assert code == 1


def test_incidents_correlate_from_stored_alerts(tmp_path: Path) -> None:
    from healthsec.model import Alert, IncidentStatus

    db = str(tmp_path / "h.db")
    store = Store.open(db)
    ts = datetime(2026, 3, 2, 9, tzinfo=UTC)

    def alert(aid: str, host: str, minutes: int, technique: str) -> Alert:
        return Alert(
            id=aid,
            ts=ts.replace(minute=minutes),
            detector="sigma",
            detector_version="1",
            title=f"{technique} on {host}",
            score=0.8,
            severity=Severity.HIGH,
            explanation="rule matched",
            entities=(Entity(EntityKind.HOST, host),),
            techniques=(f"attack.{technique.lower()}",),
        )

    store.alerts.add_many(
        [
            alert("a1", "ws-1", 0, "T1059.001"),
            alert("a2", "ws-1", 20, "T1003.001"),
            alert("a3", "ws-9", 5, "T1486"),
        ]
    )
    store.close()
    code, out = _run("incidents", "correlate", "--format", "json", "--db", db)
    assert code == 0, out
    assert json.loads(out) == {"alerts": 3, "incidents": 2, "alerts_in_incidents": 3}
    rows = json.loads(_run("incidents", "list", "--format", "json", "--db", db)[1])
    ws1 = next(r for r in rows if len(r["alert_ids"]) == 2)
    assert ws1["tactics"] == ["execution", "credential-access"]  # filled from the ATT&CK ids
    store = Store.open(db)
    store.incidents.set_status(ws1["id"], IncidentStatus.INVESTIGATING.value)
    store.close()
    _run("incidents", "correlate", "--db", db)
    again = {
        r["id"]: r["status"] for r in json.loads(_run("incidents", "list", "--format", "json", "--db", db)[1])
    }
    assert again[ws1["id"]] == "investigating"


def test_paths_from_incident(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    (tmp_path / "inv.csv").write_text(INVENTORY)
    assert _run("assets", "import", str(tmp_path / "inv.csv"), "--db", db)[0] == 0
    store = Store.open(db)
    ts = datetime(2026, 3, 2, 9, tzinfo=UTC)
    store.incidents.upsert_many(
        [
            Incident(
                id="inc-ehr",
                title="ehr-db compromised",
                first_seen=ts,
                last_seen=ts,
                severity=Severity.HIGH,
                score=0.9,
                alert_ids=("a1",),
                entities=(Entity(EntityKind.IP, "10.2.0.5"),),
            )
        ]
    )
    store.close()
    code, out = _run(
        "paths", "--from-incident", "inc-ehr", "--top", "2", "--fixes", "1", "--format", "json", "--db", db
    )
    assert code == 0, out
    res = json.loads(out)
    assert [s["node"] for s in res["paths"][0]["steps"][:3]] == ["attacker", "entry:incident", "asset:ehr-db"]
    assert _run("paths", "--from-incident", "nope", "--db", db)[0] == 1


def test_merge_and_split_keep_every_alert(tmp_path: Path) -> None:
    from healthsec.model import Alert

    db = str(tmp_path / "h.db")
    store = Store.open(db)
    ts = datetime(2026, 3, 2, 9, tzinfo=UTC)
    store.alerts.add_many(
        [
            Alert(
                id=f"a{i}",
                ts=ts.replace(minute=i),
                detector="d",
                detector_version="1",
                title=f"alert {i}",
                score=0.5,
                severity=Severity.MEDIUM,
                explanation="x",
                entities=(Entity(EntityKind.HOST, host),),
            )
            for i, host in enumerate(["ws-1", "ws-1", "ws-2", "ws-3"])
        ]
    )
    store.close()
    assert json.loads(_run("incidents", "correlate", "--format", "json", "--db", db)[1])["incidents"] == 3
    rows = json.loads(_run("incidents", "list", "--format", "json", "--db", db)[1])
    by_alert = {a: r["id"] for r in rows for a in r["alert_ids"]}
    code, out = _run("incidents", "merge", by_alert["a2"], by_alert["a3"], "--format", "json", "--db", db)
    assert code == 0, out
    assert sorted(json.loads(out)["alert_ids"]) == ["a2", "a3"]
    rows = json.loads(_run("incidents", "list", "--format", "json", "--db", db)[1])
    assert sorted(sorted(r["alert_ids"]) for r in rows) == [["a0", "a1"], ["a2", "a3"]]
    code, out = _run("incidents", "split", by_alert["a0"], "a1", "--format", "json", "--db", db)
    assert code == 0, out
    rows = json.loads(_run("incidents", "list", "--format", "json", "--db", db)[1])
    assert sorted(sorted(r["alert_ids"]) for r in rows) == [["a0"], ["a1"], ["a2", "a3"]]
    # refusals: unknown incident, a split that would leave one side empty
    assert _run("incidents", "merge", "nope", by_alert["a0"], "--db", db)[0] == 1
    code, out = _run("incidents", "split", by_alert["a0"], "a0", "--db", db)
    assert code == 1
    assert "both sides" in out
