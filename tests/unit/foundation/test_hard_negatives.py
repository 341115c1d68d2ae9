"""The simulator speaks real formats, its benign day carries look-alikes, and false alerts are counted."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from healthsec.detect.clinical.baseline import DicomMisuseDetector, TelemetryIntegrityDetector
from healthsec.ingest.hl7 import message_event
from healthsec.model import Alert, ClinicalMessage, DeviceReading, Severity
from healthsec.sim import simulate
from healthsec.sim.adt import adt_text
from healthsec.sim.evaluate import evaluate
from healthsec.sim.hard_negatives import NIGHTLY, ONE_OFF

T0 = datetime(2026, 3, 3, tzinfo=UTC)


@pytest.fixture(scope="module")
def days():  # type: ignore[no-untyped-def]
    base = simulate(3, day=0, campaigns=())
    return base, simulate(3, day=1, hospital=base.hospital)


def test_unsupported_adt_trigger_is_an_error() -> None:
    with pytest.raises(ValueError, match="unsupported ADT trigger 'A99'"):
        adt_text("A99", T0, control_id="1", patient_id="P", surname="X", ward=None)


def test_simulated_adt_is_real_hl7_and_carries_nothing_the_parser_does_not_give(days) -> None:  # type: ignore[no-untyped-def]
    _, day = days
    adts = [e for e in day.events if isinstance(e, ClinicalMessage) and e.message_type.startswith("ADT")]
    assert {e.message_type for e in adts} >= {"ADT^A01", "ADT^A08"}
    for e in adts:
        again = message_event(str(e.fields["text"]), source="x", locator="x", record=1, received=e.ts)
        assert dict(e.fields) == dict(again.fields) and e.patient_id == again.patient_id
        assert e.fields["errors"] == [] and e.fields["care_providers"]
    legacy = {"care_team", "ward"}
    assert not any(legacy & set(getattr(e, "fields", {})) for e in day.events)


def test_hard_negatives_are_benign_and_the_weekly_ones_start_after_the_learning_day(days) -> None:  # type: ignore[no-untyped-def]
    base, day = days
    assert set(base.hard_negatives.values()) == set(NIGHTLY)
    assert set(day.hard_negatives.values()) == set(NIGHTLY) | set(ONE_OFF)
    assert all(day.labels[e] is None for e in day.hard_negatives)
    kinds = Counter(day.hard_negatives.values())
    assert kinds["research_export"] >= 100 and kinds["vulnerability_scan"] >= 500
    assert any(
        e.fields["text"].startswith("GET /")
        for e in day.events
        if e.id in day.hard_negatives and isinstance(e, ClinicalMessage) and e.protocol == "hl7"
    )  # type: ignore[union-attr]
    new = [e for e in day.events if isinstance(e, DeviceReading) and e.device_id == "monitor-17"]
    assert new and "monitor-17" not in {a.name for a in day.assets}


def _alert(aid: str, evidence: tuple[str, ...], detector: str = "d") -> Alert:
    return Alert(
        id=aid,
        ts=T0,
        detector=detector,
        detector_version="1",
        title="t",
        score=1.0,
        severity=Severity.LOW,
        explanation="x",
        evidence=evidence,
    )


def test_false_alerts_are_counted_per_day_detector_and_look_alike() -> None:
    labels = {"a1": "camp", "a2": "camp", "b1": None, "b2": None, "b3": None}
    hard = {"b1": "vulnerability_scan", "b2": "vulnerability_scan"}
    alerts = [
        _alert("true", ("a1", "a2", "b1")),
        _alert("scan", ("b1", "b2", "b3"), "flow"),
        _alert("plain", ("b3",), "care"),
        _alert("learning-day", ("z9",), "sigma"),
    ]
    ev = evaluate(alerts, [], labels, [], hard_negatives=hard)
    assert ev.alert_precision == 0.25
    assert ev.false_alerts_per_benign_day == 2 and ev.false_alerts_learning_day == 1
    assert ev.false_alerts_by_detector == {"care": 1, "flow": 1}
    assert ev.false_alerts_by_hard_negative == {"ordinary": 1, "vulnerability_scan": 1}
    assert ev.as_dict()["false_alerts_per_benign_day"] == 2


def _pump(i: int, rate: float | None, pressure: float, ip: str = "10.0.0.2") -> DeviceReading:
    return DeviceReading(
        id=f"p{i}",
        ts=T0 + timedelta(minutes=10 * i),
        source="t",
        device_id="pump-1",
        device_type="infusion_pump",
        ip=ip,
        metrics={"rate_ml_h": rate, "pressure_mmhg": pressure},
    )


def test_a_stopped_pump_is_plausible_but_a_runaway_rate_is_not() -> None:
    det = TelemetryIntegrityDetector()
    det.fit([_pump(i, 50.0, 120.0 + (i % 5) * 3) for i in range(40)])
    assert det.detect([_pump(50, 0.0, 0.0)]) == []
    assert det.detect([_pump(51, 50.0, 0.0)])  # running with no line pressure: still flagged
    assert det.detect([_pump(52, 999.0, 119.0)])


def _find(i: int, sender: str, patient: str = "*") -> ClinicalMessage:
    return ClinicalMessage(
        id=f"f{sender}{i}",
        ts=T0 + timedelta(seconds=i),
        source="t",
        protocol="dicom",
        message_type="C-FIND",
        sender=sender,
        fields={"PatientID": patient},
    )


def test_a_job_that_queried_with_wildcards_while_learning_is_not_flagged_for_it_again() -> None:
    det = DicomMisuseDetector()
    det.fit([_find(i, "BACKUP_01") for i in range(3)] + [_find(9, "VIEWER_02", "MRN1")])
    assert det.detect([_find(20 + i, "BACKUP_01") for i in range(3)]) == []
    (alert,) = det.detect([_find(30 + i, "VIEWER_02") for i in range(3)])
    assert "wildcard patient query" in alert.explanation
