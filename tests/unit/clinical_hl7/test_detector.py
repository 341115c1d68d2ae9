"""HL7 detector rules on real CDC carriers with generated attacks; benign messages stay quiet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from healthsec.detect.base import AlertingDetector
from healthsec.detect.clinical.hl7 import HL7Detector
from healthsec.detect.clinical.hl7_rules import find_injections, unescape
from healthsec.ingest.hl7 import HL7FileSource, message_event
from healthsec.model import ClinicalMessage
from healthsec.testing import hl7_attacks as atk

NOW = datetime(2025, 1, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def benign(shared_data: Path) -> list[ClinicalMessage]:
    root = shared_data / "hl7v2-fhir-samples-cdc" / "examples"
    return [
        e
        for e in HL7FileSource([root]).read()
        if isinstance(e, ClinicalMessage) and "/Test/Message/" not in (e.provenance.locator or "")  # type: ignore[union-attr]
    ]


@pytest.fixture
def detector(benign: list[ClinicalMessage]) -> HL7Detector:
    d = HL7Detector()
    d.fit(benign)
    return d


def carrier(benign: list[ClinicalMessage]) -> str:
    return next(str(e.fields["text"]) for e in benign if e.sender == "BaptistOracle|BaptistEast")


def run(det: HL7Detector, messages: tuple[str, ...]) -> set[str]:
    out: set[str] = set()
    for i, m in enumerate(messages):
        out |= {
            a.detector
            for a in det.detect([message_event(m, source="a", locator="x", record=i, received=NOW)])
        }
    return out


def test_protocol(detector: HL7Detector) -> None:
    assert isinstance(detector, AlertingDetector)


def test_clean_benign_messages_raise_nothing(benign: list[ClinicalMessage], detector: HL7Detector) -> None:
    noisy = [e.provenance.locator for e in benign if detector.detect([e])]  # type: ignore[union-attr]
    # Two upstream files really are broken on the wire: an annotated file and a wrapped OBX line.
    assert sorted(Path(str(p)).name for p in noisy) == [
        "001_TN_ORU_R01_LRI_annotated_for_transformation.hl7",
        "001_TX_OML_O21.hl7",
    ]


@pytest.mark.parametrize(
    ("attack", "rule"),
    [
        (atk.sql_injection, "hl7.injection"),
        (atk.script_injection, "hl7.injection"),
        (atk.escaped_script_injection, "hl7.injection"),
        (atk.command_injection, "hl7.injection"),
        (atk.malformed_structure, "hl7.malformed"),
        (atk.oversized, "hl7.oversized"),
        (atk.unknown_sender, "hl7.unknown-sender"),
        (atk.unseen_trigger, "hl7.unseen-type"),
        (atk.flood, "hl7.flood"),
        (atk.bulk_query, "hl7.bulk-query"),
        (atk.wildcard_query, "hl7.bulk-query"),
        (atk.ack_anomaly, "hl7.ack-invalid"),
    ],
)
def test_each_attack_fires_its_rule(
    benign: list[ClinicalMessage], detector: HL7Detector, attack: object, rule: str
) -> None:
    import random

    msgs = attack(carrier(benign), random.Random(1))  # type: ignore[operator]
    assert rule in run(detector, msgs)


def test_flood_threshold_uses_receive_time_for_live_traffic(benign: list[ClinicalMessage]) -> None:
    det = HL7Detector(flood_floor=10)  # no baseline for this sender: the floor is the limit
    text = carrier(benign)
    alerts = []
    for i in range(30):
        t = NOW + timedelta(seconds=i * 10)  # 6 per minute: below the floor
        alerts += det.detect([message_event(text, source="l", locator="x", record=i, received=t, live=True)])
    assert alerts == []
    for i in range(30):
        t = NOW + timedelta(minutes=10, milliseconds=i * 100)
        alerts += det.detect([message_event(text, source="l", locator="x", record=i, received=t, live=True)])
    assert [a.detector for a in alerts] == ["hl7.flood"]  # one alert per flood, not one per message


def test_phi_stays_out_of_alerts(benign: list[ClinicalMessage]) -> None:
    ev = next(e for e in benign if e.patient_id and e.sender == "BaptistOracle|BaptistEast")
    text = str(ev.fields["text"]).replace("\rPID|", "\rNTE|1||<script>x</script>\rPID|", 1)
    plain = HL7Detector().detect([message_event(text, source="a", locator="x", record=1, received=NOW)])
    keyed = HL7Detector(phi_key=b"a-patient-key-of-16-bytes").detect(
        [message_event(text, source="a", locator="x", record=1, received=NOW)]
    )
    assert plain and keyed
    for a in plain + keyed:
        assert ev.patient_id not in a.explanation and all(ev.patient_id not in x.value for x in a.entities)
    assert not any(x.kind == "patient" for x in plain[0].entities)
    assert any(x.kind == "patient" and x.value.startswith("patient-") for x in keyed[0].entities)


def test_baseline_round_trips_as_json(detector: HL7Detector) -> None:
    again = HL7Detector()
    again.load_dict(orjson.loads(orjson.dumps(detector.to_dict())))
    assert again.senders == detector.senders and again.applications == detector.applications
    assert again.receivers == detector.receivers and detector.receivers
    with pytest.raises(ValueError, match="not 'hl7'"):
        HL7Detector().load_dict({"detector": "dicom"})


def test_injection_location_and_escapes() -> None:
    assert unescape("a\\F\\b\\X3C\\") == "a|b<"
    hits = find_injections("MSH|^~\\&|A\rPID|1||X||Bob' OR '1'='1\rOBX|1|TX|c||\\X3C\\script>")
    assert [(h.kind, h.location) for h in hits] == [("sql", "PID-5"), ("script", "OBX-5")]
    assert find_injections("MSH|^~\\&|A\rNTE|1||Select the right tube from the rack; -- see SOP") == []


def _msg(sender: str, receiver: str, mtype: str, control: str, extra: str = "") -> str:
    sa, sf = sender.split("|")
    ra, rf = receiver.split("|")
    return f"MSH|^~\\&|{sa}|{sf}|{ra}|{rf}|20250102000000||{mtype}|{control}|P|2.5.1{extra}"


def test_unsolicited_ack_and_nack_burst() -> None:
    det = HL7Detector()
    lab, engine = "LAB|H", "ENGINE|H"
    base = [
        message_event(_msg(lab, engine, "ORU^R01", f"C{i}"), source="b", locator="x", record=i, received=NOW)
        for i in range(3)
    ]
    base.append(
        message_event(
            _msg(engine, lab, "ACK^R01", "A0", "\rMSA|AA|C0"), source="b", locator="x", record=9, received=NOW
        )
    )
    det.fit(base)
    live = [
        message_event(
            _msg(lab, engine, "ORU^R01", "C100"), source="l", locator="x", record=1, received=NOW, live=True
        )
    ]
    assert det.detect(live) == []
    good_ack = message_event(
        _msg(engine, lab, "ACK^R01", "A1", "\rMSA|AA|C100"),
        source="l",
        locator="x",
        record=2,
        received=NOW,
        live=True,
    )
    assert det.detect([good_ack]) == []
    forged = message_event(
        _msg(engine, lab, "ACK^R01", "A2", "\rMSA|AA|NEVER-SENT"),
        source="l",
        locator="x",
        record=3,
        received=NOW,
        live=True,
    )
    assert [a.detector for a in det.detect([forged])] == ["hl7.ack-unsolicited"]
    nacks = [
        message_event(
            _msg(engine, lab, "ACK^R01", f"N{i}", "\rMSA|AE|C100"),
            source="l",
            locator="x",
            record=10 + i,
            received=NOW + timedelta(seconds=i),
            live=True,
        )
        for i in range(12)
    ]
    assert [a.detector for a in det.detect(nacks)] == ["hl7.nack-burst"]
