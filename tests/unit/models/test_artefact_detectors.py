"""Detectors built from loaded artefacts: they alert, name the artefact in their version, never re-fit."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from healthsec.detect.artefacts_load import load_artefact
from healthsec.detect.base import AlertingDetector
from healthsec.detect.clinical.telemetry_model import FORMAT_VERSION
from healthsec.detect.ml.artefact_detectors import (
    detector_for,
    device_model_detector,
    flow_model_detector,
    telemetry_model_detector,
)
from healthsec.model import Flow
from healthsec.testing import artefacts as synth
from healthsec.testing.kits import check_detector


def _loaded(kind: str, files: dict[str, bytes], version: int = 3):  # type: ignore[no-untyped-def]
    art = dataclasses.replace(synth.artefact_of(kind, files), version=version)
    return load_artefact(art, files)


def test_telemetry_detector_flags_injected_readings(telemetry_files: dict[str, bytes]) -> None:
    det = telemetry_model_detector(_loaded("telemetry", telemetry_files))
    assert isinstance(det, AlertingDetector)
    assert (det.name, det.version) == ("clinical.telemetry-model", f"{FORMAT_VERSION}+telemetry-v3")
    benign, _ = synth.readings(30, 5)
    assert det.detect(benign) == []
    mixed, classes = synth.readings(30, 6, attack_every=3)
    alerts = det.detect(mixed)
    assert alerts and all(a.detector_version == f"{FORMAT_VERSION}+telemetry-v3" for a in alerts)
    flagged = {e for a in alerts for e in a.evidence}
    assert flagged == {r.id for r, c in zip(mixed, classes, strict=True) if c != "benign"}
    other_type, _ = synth.readings(30, 6, attack_every=3, device_type="fridge")
    assert det.detect(other_type) == []  # trained on pumps: other device types are not scored


def test_flow_detector_alerts_on_outliers_and_fit_changes_nothing(flow_files: dict[str, bytes]) -> None:
    det = flow_model_detector(_loaded("flows", flow_files))
    assert (det.name, det.version) == ("flow-ensemble", "1.0+flows-v3")
    frame = synth.flow_frame(200, 11)
    flows = synth.flows_of(frame)
    odd = [
        dataclasses.replace(f, id=f"odd{i}", features={**f.features, "src_bytes": 1e9, "duration": 1e5})
        for i, f in enumerate(flows[:5])
    ]
    before = det.detect(flows + odd)
    assert {f"odd{i}" for i in range(5)} <= {a.evidence[0] for a in before}
    assert all(a.detector_version == "1.0+flows-v3" for a in before)
    det.fit(odd)  # a pipeline's benign day must not replace a promoted model
    assert [a.id for a in det.detect(flows + odd)] == [a.id for a in before]


def test_device_detector_alerts_when_a_host_changes_identity(device_files: dict[str, bytes]) -> None:
    det = device_model_detector(_loaded("devices", device_files))
    assert det.name == "ml.device-identity"

    def host_flows(device: str, k: int, host: str, offset: int) -> list[Flow]:
        cap = synth.device_capture(device, k, n=25, seed=9)
        rows = cap.frame.to_dicts()
        return [
            Flow(
                id=f"{host}-{offset}-{i}",
                ts=synth.T0 + timedelta(minutes=offset, seconds=i),
                source="synthetic",
                src_ip=host,
                dst_ip="10.0.1.1",
                application="TLS",
                features={**row, "requested_server_name": cap.server_names[i]},
            )
            for i, row in enumerate(rows)
        ]

    assert det.detect(host_flows("infusion-pump", 7, "10.2.0.5", 0)) == []  # first seen: inventory
    assert det.detect(host_flows("infusion-pump", 8, "10.2.0.5", 60)) == []  # same device
    alerts = det.detect(host_flows("monitor", 9, "10.2.0.5", 120))
    assert len(alerts) == 1
    assert "no longer looks like a infusion-pump" in alerts[0].title
    assert alerts[0].features["now"] == "monitor" and alerts[0].techniques == ("T0849",)
    assert det.detect(host_flows("monitor", 9, "10.2.0.6", 0)[:5]) == []  # too few flows to judge


def test_detector_for_dispatches_by_kind(telemetry_files: dict[str, bytes]) -> None:
    det = detector_for(_loaded("telemetry", telemetry_files))
    assert det.name == "clinical.telemetry-model"


def test_artefact_detectors_pass_the_detector_kit(
    telemetry_files: dict[str, bytes], flow_files: dict[str, bytes]
) -> None:
    readings, _ = synth.readings(60, 8, attack_every=3)
    tel = check_detector(
        lambda: telemetry_model_detector(_loaded("telemetry", telemetry_files)), [], readings
    )
    assert tel
    flows = synth.flows_of(synth.flow_frame(100, 12))
    odd = [
        dataclasses.replace(f, id=f"x{f.id}", features={**f.features, "src_bytes": 1e9}) for f in flows[:3]
    ]
    assert check_detector(lambda: flow_model_detector(_loaded("flows", flow_files)), flows, flows + odd)
