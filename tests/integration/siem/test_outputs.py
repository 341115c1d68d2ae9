"""SIEM outputs through the outbox to real local receivers; every record validated against its schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from syslog_rfc5424_parser import SyslogMessage

from healthsec.config import Settings
from healthsec.model import Alert, Asset, Entity, EntityKind, EntityRole, Incident, Severity
from healthsec.model.assets import Criticality
from healthsec.respond import siem
from healthsec.services import outputs
from healthsec.services.notify import dispatch
from healthsec.store import Store
from healthsec.store.cases import cases

T0 = datetime(2027, 3, 3, 14, 30, tzinfo=UTC)
pytestmark = pytest.mark.integration


def _seed(store: Store) -> tuple[list[Alert], Incident]:
    store.assets.upsert_many(
        [
            Asset(
                id="pump-13",
                name="pump-13",
                role="infusion_pump",
                zone="devices",
                ip="10.20.1.13",
                criticality=Criticality.LIFE_SUSTAINING,
            )
        ]
    )
    ents = (
        Entity(EntityKind.IP, "10.20.1.13", EntityRole.TARGET),
        Entity(EntityKind.HOST, "ws-027"),
        Entity(EntityKind.USER, "jdoe"),
        Entity(EntityKind.PATIENT, "pt-4f3a9", EntityRole.TARGET),
    )
    alerts = [
        Alert(
            id="al-1",
            ts=T0,
            detector="sigma",
            detector_version="1.0",
            title='LSASS dumped | with "comsvcs" = MiniDump',
            score=0.93,
            severity=Severity.CRITICAL,
            explanation="rule matched: Image = rundll32.exe",
            entities=ents,
            techniques=("T1003.001", "T1059"),
            tactics=("credential-access", "execution"),
        ),
        Alert(
            id="al-2",
            ts=T0 + timedelta(minutes=1),
            detector="flow-beacon",
            detector_version="1.0",
            title="beacon",
            score=0.4,
            severity=Severity.LOW,
            explanation="regular outbound",
            entities=(Entity(EntityKind.IP, "10.9.9.9"),),
        ),
    ]
    store.alerts.add_many(alerts)
    inc = Incident(
        id="inc-1",
        title="credential theft on ws-027",
        first_seen=T0,
        last_seen=T0 + timedelta(minutes=1),
        severity=Severity.CRITICAL,
        score=0.93,
        alert_ids=("al-1", "al-2"),
        entities=ents,
        techniques=("T1003.001",),
        tactics=("credential-access",),
    )
    store.incidents.upsert_many([inc])
    return alerts, inc


def _settings(syslog: dict[str, Any], http_url: str, token_file: Path) -> Settings:
    outs: list[dict[str, Any]] = [
        {
            "name": "sys-udp",
            "transport": "syslog",
            "format": "cef",
            "host": "127.0.0.1",
            "port": syslog["udp"].port,
            "protocol": "udp",
        },
        {
            "name": "sys-tcp",
            "transport": "syslog",
            "format": "ocsf",
            "host": "127.0.0.1",
            "port": syslog["tcp"].port,
            "protocol": "tcp",
        },
        {
            "name": "sys-tls",
            "transport": "syslog",
            "format": "cef",
            "host": "127.0.0.1",
            "port": syslog["tls"].port,
            "protocol": "tls",
            "ca_file": str(syslog["tls"].cert),
        },
        {"name": "elastic", "transport": "elastic", "format": "ecs", "url": http_url, "index": "hs"},
        {"name": "elastic-ocsf", "transport": "elastic", "format": "ocsf", "url": http_url},
        {
            "name": "splunk",
            "transport": "hec",
            "format": "ecs",
            "url": http_url,
            "token_file": str(token_file),
            "min_severity": "high",
        },
    ]
    return Settings(outputs=outs, console_url="https://soc.example/console")


def _check_syslog(text: str, fmt: str) -> dict[str, Any]:
    msg = SyslogMessage.parse(text)  # an RFC 5424 parser (syslog-rfc5424-parser): raises if malformed
    assert msg.appname == "healthsec"
    sd = msg.sd["healthsec@32473"]
    body = msg.msg.lstrip("\ufeff")
    if fmt == "cef":
        assert body.startswith("CEF:0|healthsec|healthsec|")
        _check_cef(body)
    else:
        siem.validate_ocsf(json.loads(body))
    return sd


def _check_cef(line: str) -> None:
    """Re-read every extension key against the ArcSight dictionary (cefevent, strict)."""
    import re

    from cefevent import CEFEvent

    ext = line.split("|", 7)[7]
    ev = CEFEvent(strict=True)
    for key in re.findall(r"(?:^| )(\w+)=", ext):
        assert ev.get_cef_field_name(key) or key in ev._reverse_extension_dictionary, key


def test_outputs_reach_every_receiver_and_validate(
    tmp_path: Path, syslog_receivers: dict[str, Any], http_receiver: Any
) -> None:
    store = Store.open(str(tmp_path / "o.db"), "north")
    _, inc = _seed(store)
    token = tmp_path / "hec.token"
    token.write_text("hec-test-token\n")
    settings = _settings(syslog_receivers, http_receiver.url, token)

    added = outputs.enqueue(store, settings, [inc])
    # 6 destinations x (2 alerts + 1 incident), less the HEC one's low-severity alert
    assert added == 17
    assert outputs.enqueue(store, settings, [inc]) == 0  # idempotent
    counts = dispatch(store, outputs.senders(settings))
    assert counts == {"sent": 17, "retry": 0, "dead": 0}
    for r in syslog_receivers.values():
        assert r.got.wait(5)
    import time

    for _ in range(50):  # UDP and the threaded TCP handlers deliver asynchronously
        if all(len(r.messages) == 3 for r in syslog_receivers.values()):
            break
        time.sleep(0.05)

    udp = [_check_syslog(m, "cef") for m in syslog_receivers["udp"].messages]
    tls = [_check_syslog(m, "cef") for m in syslog_receivers["tls"].messages]
    tcp = [_check_syslog(m, "ocsf") for m in syslog_receivers["tcp"].messages]
    assert len(udp) == len(tls) == len(tcp) == 3
    by_id = {sd["id"]: sd for sd in tcp}
    assert by_id["al-1"]["severity"] == "critical"
    assert by_id["al-1"]["criticality"] == "life_sustaining"
    assert by_id["al-1"]["patientSafetyImpact"] == "1.000"

    ecs_docs = [d for a, d in http_receiver.bulk if a["create"]["_index"] == "hs"]
    ocsf_docs = [d for a, d in http_receiver.bulk if a["create"]["_index"] == "healthsec-findings"]
    assert len(ecs_docs) == len(ocsf_docs) == 3
    for d in ecs_docs:
        siem.validate_ecs(d)
    for d in ocsf_docs:
        siem.validate_ocsf(d)
    ecs1 = next(d for d in ecs_docs if d["event"]["id"] == "al-1")
    assert ecs1["threat"]["technique"]["id"] == ["T1003", "T1059"]
    assert ecs1["threat"]["technique"]["subtechnique"]["id"] == ["T1003.001"]
    assert ecs1["threat"]["tactic"]["id"] == ["TA0006", "TA0002"]
    assert ecs1["event"]["severity"] == 5
    assert ecs1["host"]["risk"] == {"static_level": "Critical", "static_score_norm": 100.0}
    ocsf1 = next(d for d in ocsf_docs if d["finding_info"]["uid"] == "al-1")
    assert ocsf1["class_uid"] == 2004 and ocsf1["severity_id"] == 5
    attack = ocsf1["finding_info"]["attacks"][0]
    assert attack["technique"]["uid"] == "T1003" and attack["sub_technique"]["uid"] == "T1003.001"
    assert ocsf1["resources"][0]["criticality"] == "life_sustaining"
    assert ocsf1["impact_id"] == 4 and ocsf1["impact_score"] == 100
    # no patient pseudonym in any record
    assert "pt-4f3a9" not in json.dumps(http_receiver.bulk + http_receiver.hec)
    assert not any("pt-4f3a9" in m for r in syslog_receivers.values() for m in r.messages)

    assert len(http_receiver.hec) == 2  # al-1 and the incident (min_severity high)
    for h in http_receiver.hec:
        siem.validate_hec(h)
        siem.validate_ecs(h["event"])
    assert {h["fields"]["id"] for h in http_receiver.hec} == {"al-1", "inc-1"}
    assert next(h for h in http_receiver.hec if h["fields"]["id"] == "al-1")["fields"][
        "mitre_technique_id"
    ] == ["T1003.001", "T1059"]


def test_nothing_lost_while_a_destination_is_down(tmp_path: Path, http_receiver: Any) -> None:
    from .conftest import SyslogReceiver, free_port

    store = Store.open(str(tmp_path / "o.db"), "north")
    _, inc = _seed(store)
    port = free_port()  # nothing listens here yet
    settings = Settings(
        outputs=[
            {
                "name": "siem",
                "transport": "syslog",
                "format": "cef",
                "host": "127.0.0.1",
                "port": port,
                "protocol": "tcp",
            },
            {"name": "es", "transport": "elastic", "url": "http://127.0.0.1:9"},
        ]
    )
    outputs.enqueue(store, settings, [inc])
    now = datetime.now(UTC)
    first = dispatch(store, outputs.senders(settings), now=now)
    assert first == {"sent": 0, "retry": 6, "dead": 0}
    pending = cases(store).outbox("pending")
    assert {m["last_error"] for m in pending} == {
        "siem: syslog tcp: ConnectionRefusedError",
        "es: elastic: ConnectError",
    }
    # the syslog receiver comes up (on another port); the elastic one stays down until it dies
    live = SyslogReceiver("tcp")
    fixed = Settings(
        outputs=[
            {
                "name": "siem",
                "transport": "syslog",
                "format": "cef",
                "host": "127.0.0.1",
                "port": live.port,
                "protocol": "tcp",
            },
            {"name": "es", "transport": "elastic", "url": "http://127.0.0.1:9"},
        ]
    )
    later = now + timedelta(minutes=5)
    second = dispatch(store, outputs.senders(fixed), now=later, max_attempts=2)
    assert second == {"sent": 3, "retry": 0, "dead": 3}
    assert live.got.wait(5)
    dead = cases(store).outbox("dead")
    assert len(dead) == 3 and all(m["channel"] == "out:es" for m in dead)
    live.close()


def test_a_finding_that_cannot_be_written_names_the_record() -> None:
    bad = {
        "id": "al-x",
        "event": "alert",
        "ts": T0.isoformat(),
        "title": "t",
        "severity": "high",
        "entities": [{"kind": "ip", "value": "not-an-ip", "role": "actor"}],
    }
    with pytest.raises(siem.FormatError, match="al-x"):
        siem.to_cef(bad)
    doc = siem.to_ocsf({**bad, "entities": []})
    doc["severity_id"] = 42
    with pytest.raises(siem.FormatError, match="al-x"):
        siem.validate_ocsf(doc)
