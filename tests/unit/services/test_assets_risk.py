"""Asset, risk and attack-path use cases over SQLite and PostgreSQL, with malformed input first."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthsec.services import assets as uc
from healthsec.services import risk
from healthsec.services.common import Invalid, NotFound, Refused
from healthsec.store import Store

INVENTORY = """Hostname,IP Address,Device Type,Network Segment,PHI Records,Internet Facing,Remote Support
portal-web,10.0.0.5,web server,DMZ,,yes,
ehr-db,10.2.0.5,EHR database,Data Centre,250000,,
pump-icu-07,10.3.0.7,infusion pump,ICU Biomed VLAN,,,yes
"""
SCAN = """host,ip,cve,cvss vector,exploited
ehr-db,10.2.0.5,CVE-2023-21839,CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H,no
"""


def test_bad_inventory_names_every_row_and_imports_nothing(store: Store, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(INVENTORY + "pump-icu-07,10.3.0.99,infusion pump,ICU,,,\n")
    with pytest.raises(Invalid) as err:
        uc.import_inventory(store, bad, actor="cli")
    assert "nothing was imported" in str(err.value)
    assert any("row 5" in p and "duplicate asset 'pump-icu-07'" in p for p in err.value.problems)
    assert uc.list_assets(store, with_total=True).total == 0
    with pytest.raises(NotFound, match=r"missing\.csv"):
        uc.import_inventory(store, tmp_path / "missing.csv", actor="cli")
    with pytest.raises(Invalid, match="COLUMN=FIELD"):
        uc.parse_column_map(["no-equals"])
    assert uc.parse_column_map(["Seg=zone"]) == {"Seg": "zone"}


def test_import_show_kev_risk_and_paths(store: Store, tmp_path: Path) -> None:
    (tmp_path / "inv.csv").write_text(INVENTORY)
    (tmp_path / "scan.csv").write_text(SCAN)
    res = uc.import_inventory(store, tmp_path / "inv.csv", actor="cli")
    assert (res.rows, res.assets, res.vulnerabilities) == (3, 3, 0)
    assert uc.import_inventory(store, tmp_path / "scan.csv", actor="cli").vulnerabilities == 1
    listed = uc.list_assets(store, limit=2, with_total=True)
    assert listed.total == 3
    assert listed.items[0].id == "pump-icu-07"  # most critical first
    before = uc.asset_detail(store, "10.2.0.5")
    assert before.asset.id == "ehr-db"
    assert [v.cve for v in before.vulnerabilities] == ["CVE-2023-21839"]
    with pytest.raises(NotFound, match="no asset 'nope'"):
        uc.asset_detail(store, "nope")
    kev = tmp_path / "kev.json"
    kev.write_text('{"vulnerabilities": [{"cveID": "CVE-2023-21839"}]}')
    assert uc.flag_known_exploited(store, kev, actor="cli") == uc.KevResult(1, 1)
    assert uc.asset_detail(store, "ehr-db").risk.score > before.risk.score
    bad_kev = tmp_path / "bad-kev.json"
    bad_kev.write_text('{"vulnerabilities": [{"cveID": "CVE-1"}]}')
    with pytest.raises(Invalid, match="nothing was changed"):
        uc.flag_known_exploited(store, bad_kev, actor="cli")
    ranked = risk.rank_assets(store, 2)
    assert len(ranked) == 2
    assert ranked[0].score >= ranked[1].score
    with pytest.raises(Invalid, match="top"):
        risk.rank_assets(store, 0)
    found = risk.attack_paths(store, to="pump-icu-07", top=2, fixes=1)
    assert found.paths
    assert found.paths[0].steps[-1].node == "asset:pump-icu-07"
    assert len(found.fixes) == 1
    with pytest.raises(NotFound, match="no asset 'nope'"):
        risk.attack_paths(store, to="nope")
    with pytest.raises(NotFound, match="no incident 'ghost'"):
        risk.attack_paths(store, from_incident="ghost")
    with pytest.raises(Invalid, match="top"):
        risk.attack_paths(store, top=0)


def test_paths_from_an_incident_without_assets_is_refused(hospital: Store) -> None:
    from usecase_helpers import T0

    from healthsec.model import Entity, EntityKind, Incident, Severity

    hospital.incidents.upsert_many(
        [
            Incident(
                id="inc-away",
                title="somewhere else",
                first_seen=T0,
                last_seen=T0,
                severity=Severity.LOW,
                score=0.1,
                alert_ids=("a5",),
                entities=(Entity(EntityKind.HOST, "elsewhere"),),
            )
        ]
    )
    with pytest.raises(Refused, match="names no inventoried asset"):
        risk.attack_paths(hospital, from_incident="inc-away")
    held = risk.attack_paths(hospital, from_incident="inc-pump", top=1, fixes=0)
    assert held.fixes == []


def test_rules_file_must_be_a_list_of_zone_pairs(tmp_path: Path) -> None:
    bad = tmp_path / "rules.json"
    bad.write_text('[{"from": "dmz"}]')
    with pytest.raises(Invalid, match="rules must be a JSON list"):
        risk.read_rules(bad)
    good = tmp_path / "ok.json"
    good.write_text('[{"from": "dmz", "to": "servers", "note": "web to db"}]')
    assert [(r.src, r.dst) for r in risk.read_rules(good)] == [("dmz", "servers")]


def test_upsert_names_the_bad_record_and_stores_nothing(store: Store) -> None:
    good = {"id": "x1", "name": "x", "role": "r", "zone": "dmz"}
    with pytest.raises(Invalid) as err:
        uc.upsert_assets(store, [good, {"id": "x2"}], actor="api")
    assert err.value.loc == ("assets", 1)
    assert store.assets.count() == 0
    assert [a.id for a in uc.upsert_assets(store, [good], actor="api")] == ["x1"]


def test_discover_adds_assets_named_by_alerts(hospital: Store) -> None:
    found = uc.discover_assets(hospital, actor="cli")
    assert "elsewhere" in {a.name for a in found}
    assert uc.discover_assets(hospital, actor="cli") == []  # known now
