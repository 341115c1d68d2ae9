"""Inventory / scanner import: bad input first (unknown columns, duplicates, invalid CVSS), then layouts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from healthsec.analyze.inventory import canonical_zone, discover_from_alerts, infer_criticality
from healthsec.ingest.inventory import read_inventory
from healthsec.model import Alert, Asset, Criticality


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_unknown_column_is_named_and_nothing_is_built(tmp_path: Path) -> None:
    p = _write(tmp_path, "inv.csv", "hostname,ip,zone,colour\nehr-db,10.0.0.1,servers,blue\n")
    res = read_inventory(p)
    assert [e.describe() for e in res.errors] == [
        "inv.csv: header: unknown column 'colour' (map it with --map 'colour=FIELD' or skip it with --ignore)"
    ]
    assert res.assets == []
    ok = read_inventory(p, ignore=("colour",))
    assert not ok.errors
    assert [a.name for a in ok.assets] == ["ehr-db"]


def test_duplicates_and_invalid_cvss_name_their_rows(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "scan.csv",
        "hostname,ip,cve,cvss\n"
        "ehr-db,10.0.0.1,CVE-2024-0001,CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\n"
        "ehr-db,10.0.0.1,CVE-2024-0002,CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\n"
        "ehr-db,10.0.0.1,CVE-2024-0001,CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\n"
        "pacs,10.0.0.1,,\n"
        "ehr-db,10.0.0.9,CVE-2024-0003,\n",
    )
    res = read_inventory(p)
    msgs = [e.describe() for e in res.errors]
    assert msgs[0].startswith("scan.csv: row 3: invalid CVSS vector")
    assert "AV:Q" in msgs[0]
    assert msgs[1] == "scan.csv: row 4: duplicate finding CVE-2024-0001 on 'ehr-db' (first at row 2)" or msgs[
        1
    ].startswith("scan.csv: row 4: duplicate finding CVE-2024-0001")
    assert msgs[2] == "scan.csv: row 5: duplicate IP 10.0.0.1 (asset " + repr(res.assets[0].id) + " at row 2)"
    assert msgs[3].startswith("scan.csv: row 6: asset")
    assert "ip '10.0.0.1' vs '10.0.0.9'" in msgs[3]
    assert len(msgs) == 4


def test_duplicate_asset_in_plain_inventory(tmp_path: Path) -> None:
    p = _write(tmp_path, "inv.csv", "asset id;name;zone\nA1;x;clinical\nA2;y;clinical\nA1;x;clinical\n")
    res = read_inventory(p)
    assert [e.describe() for e in res.errors] == ["inv.csv: row 4: duplicate asset 'A1' (first at row 2)"]


def test_bad_values_name_row_and_field(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "inv.csv",
        "name,ip,criticality,phi records,internet facing\n"
        "a,10.0.0.300,,,\nb,10.0.0.2,extreme,,\nc,10.0.0.3,,lots,\nd,10.0.0.4,,,maybe\n",
    )
    msgs = [e.describe() for e in read_inventory(p).errors]
    assert msgs == [
        "inv.csv: row 2: invalid IP address '10.0.0.300'",
        "inv.csv: row 3: unknown criticality 'extreme' (use 1-5 or one of: administrative, business, "
        "clinical_support, patient_monitoring, life_sustaining)",
        "inv.csv: row 4: phi_records is not a number: 'lots'",
        "inv.csv: row 5: not a yes/no value: 'maybe'",
    ]


def test_unseen_json_layout_with_aliases(tmp_path: Path) -> None:
    records = {
        "devices": [
            {
                "Device Name": "VENT-ICU-3",
                "IP Address": "10.3.1.3",
                "Manufacturer": "Acme",
                "Device Type": "Ventilator",
                "Network Segment": "ICU-Biomed VLAN",
                "Department": "ICU",
                "Remote Support": "yes",
                "CVE ID": "CVE-2023-1000",
                "CVSS Vector": "CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                "KEV": True,
            },
            {
                "Device Name": "mail-gw",
                "IP Address": "10.0.0.25",
                "Network Segment": "DMZ",
                "Asset Type": "mail server",
                "Internet": "1",
            },
        ]
    }
    p = _write(tmp_path, "export.json", json.dumps(records))
    res = read_inventory(p)
    assert res.errors == []
    vent, mail = res.assets
    assert vent.criticality == Criticality.LIFE_SUSTAINING
    assert vent.vendor == "Acme"
    assert vent.owner == "ICU"
    assert canonical_zone(vent.zone) == "medical-devices"
    assert canonical_zone(mail.zone) == "dmz"
    assert res.vulns[0].known_exploited is True
    assert res.vulns[0].cvss_version == "4.0"
    profiles = {pr.asset_id: pr for pr in res.profiles}
    assert profiles[vent.id].vendor_remote is True
    assert profiles[mail.id].internet_facing is True
    assert profiles[mail.id].phi_records is None  # unknown, never 0


def test_criticality_classes_put_life_support_highest() -> None:
    assert infer_criticality("infusion pump")[0] == Criticality.LIFE_SUSTAINING
    assert infer_criticality("bedside monitor")[0] == Criticality.PATIENT_MONITORING
    assert infer_criticality("PACS server")[0] == Criticality.CLINICAL_SUPPORT
    assert infer_criticality("guest kiosk")[0] == Criticality.ADMINISTRATIVE
    assert infer_criticality("file server")[0] == Criticality.BUSINESS


def test_discovery_adds_unknown_addresses_from_alerts(make_alert: Callable[..., Alert]) -> None:
    known = [Asset(id="a", name="ehr", role="ehr", zone="servers", ip="10.0.0.1")]
    found = discover_from_alerts(
        [make_alert("x1", "10.0.0.1"), make_alert("x2", "10.0.0.77"), make_alert("x3", "203.0.113.9")], known
    )
    assert [(a.ip, a.zone, a.role) for a in found] == [("10.0.0.77", "unknown", "discovered")]


def test_nested_json_scanner_export(tmp_path: Path) -> None:
    doc = [
        {
            "host": {"name": "ehr-db", "ip": "10.2.0.5", "mac": "00-1A-2B-3C-4D-5E"},
            "zone": "Data Centre",
            "vulnerabilities": [
                {
                    "cve": "CVE-2023-0001, CVE-2023-0002",
                    "cvss": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                },
                {
                    "cve": "CVE-2023-0003",
                    "cvss": "CVSS:3.1/AV:N/AC:H/PR:L/UI:N/S:U/C:H/I:H/A:H",
                    "kev": "yes",
                },
            ],
            "tags": ["prod", "ehr"],
        }
    ]
    res = read_inventory(_write(tmp_path, "scan.json", json.dumps(doc)))
    assert res.errors == []
    assert [a.name for a in res.assets] == ["ehr-db"]
    assert res.assets[0].mac == "00:1a:2b:3c:4d:5e"
    assert sorted(v.cve for v in res.vulns) == ["CVE-2023-0001", "CVE-2023-0002", "CVE-2023-0003"]
    assert [v.known_exploited for v in res.vulns] == [None, None, True]
    assert res.ignored == ["tags"]


def test_nessus_like_layout_with_known_unused_columns(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "nessus.csv",
        "Plugin ID,CVE,CVSS v3.0 Base Score,CVSS v3.0 Vector,Risk,Host,Protocol,Port,Plugin Name,Synopsis\n"
        "1001,CVE-2021-44228,10.0,CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H,Critical,10.0.0.7,tcp,443,"
        "Log4Shell,RCE\n",
    )
    res = read_inventory(p)
    assert res.errors == []
    assert res.assets[0].ip is None  # "Host" is a name column; the value is kept as the name
    assert res.assets[0].name == "10.0.0.7"
    v = res.vulns[0]
    assert (v.cve, v.base_score, v.title) == ("CVE-2021-44228", 10.0, "Log4Shell")
    assert res.ignored == ["Plugin ID", "Risk", "Protocol", "Port", "Synopsis"]


def test_invalid_mac_names_the_row(tmp_path: Path) -> None:
    p = _write(tmp_path, "inv.csv", "name,mac\na,00:11:22:33:44:55\nb,zz:11\n")
    assert [e.describe() for e in read_inventory(p).errors] == ["inv.csv: row 3: invalid MAC address 'zz:11'"]


def test_device_identification_raises_criticality_only_when_confident() -> None:
    from healthsec.analyze.inventory import apply_identification

    a = Asset(id="x", name="x", role="unknown", zone="unknown")
    assert apply_identification(a, "infusion pump", 0.5) == a
    b = apply_identification(a, "infusion pump", 0.95)
    assert b.device_type == "infusion pump"
    assert b.criticality == Criticality.LIFE_SUSTAINING
    c = apply_identification(b, "printer", 0.99)
    assert c.criticality == Criticality.LIFE_SUSTAINING


def test_json_problems_name_the_record(tmp_path: Path) -> None:
    doc = {"assets": [{"name": "a", "ip": "10.0.0.1"}, {"name": "b", "ip": "10.0.0.1"}]}
    res = read_inventory(_write(tmp_path, "inv.json", json.dumps(doc)))
    assert [e.describe() for e in res.errors] == [
        "inv.json: record 2: duplicate IP 10.0.0.1 (asset 'a' at record 1)"
    ]


def test_known_exploited_catalogue(tmp_path: Path) -> None:
    from healthsec.ingest.inventory import read_kev

    kev = {"vulnerabilities": [{"cveID": "CVE-2021-44228"}, {"cveID": "cve-2023-4966"}]}
    cves, errors = read_kev(_write(tmp_path, "kev.json", json.dumps(kev)))
    assert (cves, errors) == ({"CVE-2021-44228", "CVE-2023-4966"}, [])
    cves, errors = read_kev(_write(tmp_path, "kev.csv", "cveID,vendor\nCVE-2021-44228,Apache\nCVE-21,x\n"))
    assert cves == {"CVE-2021-44228"}
    assert [e.describe() for e in errors] == [
        "kev.csv: row 3: invalid CVE id 'CVE-21' (expected CVE-YYYY-NNNN)"
    ]


def test_arbitrary_files_never_crash_the_reader(tmp_path: Path) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        header=st.lists(
            st.sampled_from(["name", "ip", "zone", "cve", "cvss", "kev", "mac", "x", "phi"]), max_size=5
        ),
        rows=st.lists(st.lists(cells, max_size=6), max_size=5),
        raw=st.binary(max_size=64),
    )
    def check(header: list[str], rows: list[list[str]], raw: bytes) -> None:
        text = "\n".join([",".join(header), *(",".join(r) for r in rows)])
        for name, data in (("f.csv", text.encode()), ("f.json", raw), ("g.json", text.encode())):
            p = tmp_path / name
            p.write_bytes(data)
            res = read_inventory(p)
            assert res.errors or res.assets or res.rows == 0
            for e in res.errors:
                assert e.describe().startswith(f"{name}: ")

    check()


def test_oversized_field_and_control_characters_are_named(tmp_path: Path) -> None:
    big = _write(tmp_path, "big.csv", 'name,ip\nok,10.0.0.2\n"' + "a" * 200_000 + '",10.0.0.1\n')
    res = read_inventory(big)
    assert [e.describe() for e in res.errors] == [
        "big.csv: row 3: unreadable CSV: field larger than field limit (131072)"
    ]
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"name,ip\nab\x00c,10.0.0.1\n")
    assert [e.describe() for e in read_inventory(nul).errors] == ["nul.csv: row 2: control character in name"]


def test_spreadsheet_exports_in_other_encodings_and_delimiters(tmp_path: Path) -> None:
    text = (
        "Asset Tag\tHost Name\tIP\tZone\tCriticality\n"
        "A-1\tVentilator Süd\t10.0.0.9\tICU devices\tlife critical\n"
    )
    utf16 = tmp_path / "export.txt"
    utf16.write_bytes(text.encode("utf-16"))
    res = read_inventory(utf16)
    assert res.errors == []
    a = res.assets[0]
    assert (a.id, a.name, a.criticality) == ("A-1", "Ventilator Süd", Criticality.LIFE_SUSTAINING)
    latin = tmp_path / "export.csv"
    latin.write_bytes("name;ip;owner\nPompe-3;10.0.0.3;Réanimation\n".encode("cp1252"))
    res = read_inventory(latin)
    assert res.errors == []
    assert res.assets[0].owner == "Réanimation"


def test_biomed_cmms_layout_with_overlapping_columns(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "cmms.csv",
        "Asset Tag,Serial Number,Equipment,Equipment Type,Manufacturer,Model,IPv4 Address,VLAN,Location,"
        "Department,Clinical Criticality,Last Seen\n"
        "BM-0042,SN998,ICU Vent 3,Ventilator,Acme,V500,10.30.0.3,Biomed-ICU,ICU Room 12,ICU,,2026-01-01\n",
    )
    res = read_inventory(p)
    assert res.errors == []
    a = res.assets[0]
    assert (a.id, a.name, a.ip, a.zone, a.owner, a.vendor) == (
        "BM-0042",
        "ICU Vent 3",
        "10.30.0.3",
        "Biomed-ICU",
        "ICU",
        "Acme",
    )
    assert a.device_type == "Ventilator"
    assert a.criticality == Criticality.LIFE_SUSTAINING
    # "Model" now carries the product, which advisory matching (healthsec intel) needs
    assert a.product == "V500"
    assert res.ignored == ["Serial Number", "Location", "Last Seen"]
    # equal-strength duplicates still need a decision from the user
    dup = _write(tmp_path, "dup.csv", "ip,IP\n10.0.0.1,10.0.0.2\n")
    assert [e.describe() for e in read_inventory(dup).errors] == [
        "dup.csv: header: columns 'ip' and 'IP' both mean 'ip'"
    ]
