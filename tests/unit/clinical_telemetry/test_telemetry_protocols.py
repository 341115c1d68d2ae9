"""The detectors and sources here satisfy the foundation's protocols."""

from __future__ import annotations

from healthsec.detect.base import AlertingDetector, OnlineDetector
from healthsec.detect.clinical.access import AccessDetector
from healthsec.detect.clinical.telemetry import TelemetryBaselineDetector
from healthsec.ingest.base import Source
from healthsec.ingest.fhir import AuditEventFileSource
from healthsec.ingest.telemetry import MqttTelemetrySource, TelemetryCsvSource
from healthsec.model.care import CareContext


def test_protocols() -> None:
    tele = TelemetryBaselineDetector()
    assert isinstance(tele, AlertingDetector)
    assert isinstance(tele, OnlineDetector)
    assert isinstance(AccessDetector(context=CareContext(), mask_key=b"k"), AlertingDetector)
    assert isinstance(AuditEventFileSource([]), Source)
    assert isinstance(TelemetryCsvSource("x.csv"), Source)
    assert isinstance(MqttTelemetrySource("127.0.0.1", 1883, ["t"]), Source)


def test_constructors_do_no_io() -> None:
    # Convention 1: constructors only store parameters (no connection, no file access).
    src = MqttTelemetrySource("203.0.113.1", 1883, ["t"])
    assert src.received == 0
    assert not src.subscribed.is_set()
    assert TelemetryCsvSource("/does/not/exist.csv").path.name == "exist.csv"
