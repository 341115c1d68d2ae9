"""Suricata EVE and Wazuh alerts.json in: malformed records named, real samples read, alerts kept."""

from __future__ import annotations

import configparser
import csv
import gzip
import json
from pathlib import Path

import pytest

from healthsec.detect.rules.external import ExternalAlertDetector, attack_by_signature, wazuh_severity
from healthsec.ingest.siem import EveSource, WazuhAlertsSource
from healthsec.model import Flow, LogRecord, ParseError, Severity

ALERT = {
    "timestamp": "2022-03-21T17:55:35.123456-0600",
    "flow_id": 1,
    "event_type": "alert",
    "src_ip": "10.3.21.101",
    "src_port": 49790,
    "dest_ip": "188.166.154.118",
    "dest_port": 80,
    "proto": "TCP",
    "alert": {
        "signature_id": 2035000,
        "signature": "ET MALWARE Win32/IcedID Request Cookie",
        "category": "A Network Trojan was detected",
        "severity": 1,
        "metadata": {"mitre_technique_id": ["T1071.001"], "mitre_tactic_name": ["Command_And_Control"]},
    },
}


def test_malformed_eve_records_are_named_and_the_rest_go_on(tmp_path: Path) -> None:
    lines = [
        json.dumps(ALERT),
        "{not json",
        json.dumps({"timestamp": "2022-03-21T17:55:35Z", "src_ip": "1.2.3.4"}),  # no event_type
        json.dumps({**ALERT, "alert": {"severity": 1}}),  # alert without signature
        json.dumps({**ALERT, "timestamp": "yesterday"}),
        "[1, 2]",
        json.dumps({**ALERT, "event_type": "dns", "dns": {"rrname": "x.top"}}),
    ]
    p = tmp_path / "eve.json"
    p.write_text("\n".join(lines) + "\n")
    items = list(EveSource(p).read())
    errors = [i for i in items if isinstance(i, ParseError)]
    events = [i for i in items if not isinstance(i, ParseError)]
    assert [e.record for e in errors] == [2, 3, 4, 5, 6]
    assert "no event_type" in errors[1].reason and "signature" in errors[2].reason
    assert all(str(p) in e.describe() for e in errors)
    assert [e.channel for e in events if isinstance(e, LogRecord)] == ["suricata/alert", "suricata/dns"]
    assert events[0].ts.isoformat() == "2022-03-21T23:55:35.123456+00:00"


def test_suricata_alert_keeps_signature_and_uses_rule_metadata() -> None:
    from healthsec.ingest.siem.eve import eve_event

    rec = eve_event(ALERT, source="suricata", locator="eve.json", n=1)
    (alert,) = ExternalAlertDetector().detect([rec])
    assert alert.title == "Suricata: ET MALWARE Win32/IcedID Request Cookie"
    assert alert.techniques == ("T1071.001",) and alert.tactics == ("command-and-control",)
    assert alert.severity == Severity.HIGH
    assert alert.features["signature_id"] == "2035000" and alert.features["attack_source"] == "rule metadata"
    plain = eve_event({**ALERT, "alert": {**ALERT["alert"], "metadata": {}}}, source="s", locator="e", n=2)
    (looked_up,) = ExternalAlertDetector().detect([plain])
    assert looked_up.techniques == ("T1071",) and looked_up.features["attack_source"] == "signature lookup"


@pytest.mark.parametrize(
    ("signature", "technique"),
    [
        ("ET SCAN Nmap Scripting Engine User-Agent Detected (Nmap Scripting Engine)", "T1046"),
        ("ET SCAN Potential SSH Scan", "T1110"),
        ("ET DNS Query to a *.top domain - Likely Hostile", "T1071.004"),
        ("ET MALWARE Win32/IcedID Requesting Encoded Binary M4", "T1105"),
        ("ET POLICY OpenSSL Demo CA - Internet Widgits Pty (O)", None),
        ("SURICATA Applayer Detect protocol only one direction", None),
    ],
)
def test_signature_lookup(signature: str, technique: str | None) -> None:
    techniques, _ = attack_by_signature(signature)
    assert (techniques[0] if techniques else None) == technique


def test_real_eve_samples(shared_data: Path) -> None:
    base = shared_data / "suricata-eve-samples"
    src = EveSource(base / "mssis-icedid-2022-03-21" / "out.json.gz")
    items = list(src.read())
    assert not [i for i in items if isinstance(i, ParseError)]
    assert len(items) == 2853 and src.skipped == {"stats": 1}  # 2,854 records, one stats
    flows = [i for i in items if isinstance(i, Flow)]
    assert len(flows) == 915 and all(f.src_ip and f.dst_ip for f in flows)
    alerts = ExternalAlertDetector().detect(items)  # type: ignore[arg-type]
    assert len(alerts) == 226
    icedid = [a for a in alerts if "IcedID" in a.title]
    assert icedid and all(a.techniques for a in icedid)
    # a JSON array with no offset on its timestamps (read as UTC)
    honeypot = list(EveSource(base / "frankhassanabad-alerts" / "honeypot-2018-alerts-only.json").read())
    assert len(honeypot) == 44 and all(not isinstance(i, ParseError) for i in honeypot)


def _wazuh_alerts_from_ruleset_tests(shared_data: Path, limit: int = 200) -> list[dict[str, object]]:
    """Wazuh alerts.json records built from the ruleset's test cases: real raw log lines with the rule id,
    level and decoder Wazuh raises for them (no public alerts.json corpus with a licence exists)."""
    base = shared_data / "wazuh-ruleset-test-logs"
    rows = list(csv.DictReader((base / "index.csv").open(encoding="utf-8")))
    out: list[dict[str, object]] = []
    parsers: dict[str, configparser.RawConfigParser] = {}
    for r in rows:
        if r["expect"] != "pass" or not r["level"] or not r["rule"]:
            continue
        cp = parsers.get(r["file"])
        if cp is None:
            cp = configparser.RawConfigParser(strict=False, interpolation=None)
            cp.read(base / "tests" / r["file"], encoding="utf-8")
            parsers[r["file"]] = cp
        log = cp.get(r["section"], r["log_key"], fallback=None)
        if log is None:
            continue
        out.append(
            {
                "timestamp": f"2026-05-22T10:{len(out) // 60 % 60:02d}:{len(out) % 60:02d}.000+0000",
                "rule": {"level": int(r["level"]), "description": r["section"].strip(), "id": r["rule"]},
                "agent": {"id": "001", "name": "lab-agent"},
                "decoder": {"name": r["decoder"]},
                "full_log": log,
                "id": f"1779444000.{len(out)}",
                "location": r["file"],
            }
        )
        if len(out) >= limit:
            break
    return out


def test_wazuh_alerts(shared_data: Path, tmp_path: Path) -> None:
    recs = _wazuh_alerts_from_ruleset_tests(shared_data)
    recs.append(
        {
            "timestamp": "2026-05-22T11:00:00.000+0000",
            "rule": {
                "level": 10,
                "description": "sshd: brute force",
                "id": "5712",
                "mitre": {"id": ["T1110"], "tactic": ["Credential Access"]},
            },
            "agent": {"id": "002", "name": "pacs-01", "ip": "10.1.2.3"},
            "data": {"srcip": "203.0.113.9"},
        }
    )
    lines = [json.dumps(r) for r in recs] + ['{"rule": {"id": "1", "level": "high"}}', "garbage"]
    p = tmp_path / "alerts.json.gz"
    p.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    items = list(WazuhAlertsSource(p).read())
    errors = [i for i in items if isinstance(i, ParseError)]
    assert [(e.record, "level" in e.reason or "JSON" in e.reason) for e in errors] == [
        (len(recs) + 1, True),
        (len(recs) + 2, True),
    ]
    events = [i for i in items if isinstance(i, LogRecord)]
    assert len(events) == len(recs)
    alerts = ExternalAlertDetector().detect(events)
    expected = sum(1 for r in recs if int(r["rule"]["level"]) >= 3)  # type: ignore[index]
    assert len(alerts) == expected
    brute = next(a for a in alerts if a.features["rule_id"] == "5712")
    assert brute.techniques == ("T1110",) and brute.tactics == ("credential-access",)
    assert brute.severity == Severity.HIGH
    assert {e.value for e in brute.entities} >= {"203.0.113.9", "10.1.2.3", "pacs-01"}
    assert [wazuh_severity(x) for x in (0, 4, 7, 10, 15)] == [
        Severity.INFO,
        Severity.LOW,
        Severity.MEDIUM,
        Severity.HIGH,
        Severity.CRITICAL,
    ]
