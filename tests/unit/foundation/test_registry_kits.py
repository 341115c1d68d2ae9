"""Every registered detector passes ``check_detector``; every ingest source passes ``check_source``.

Parametrised over the registry and over the ingest package, so a detector or a source added later is
checked (or fails the completeness test below) without anyone remembering to add a test.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import importlib
import inspect
import itertools
import json
import pkgutil
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from healthsec.detect.registry import BY_NAME, REGISTRY, DetectorContext
from healthsec.model import Event, EventBase
from healthsec.model.care import CareContext
from healthsec.sim import simulate
from healthsec.testing import artefacts as synth
from healthsec.testing.kits import check_detector, check_source

SIGMA = """
title: svchost started by services (kit)
id: 5d8b1e1c-0000-4000-8000-000000000001
status: test
level: low
tags: [attack.execution, attack.t1569.002]
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\\\\svchost.exe', ParentImage|endswith: '\\\\services.exe'}
  condition: sel
"""


@pytest.fixture(scope="module")
def days() -> tuple[list[Event], list[Event], Any]:
    base = simulate(9, day=0, campaigns=())
    day = simulate(9, day=1, hospital=base.hospital)
    return base.events, day.events, day.assets


def _model_case(kind: str) -> tuple[Any, list[Event], list[Event]]:
    from datetime import timedelta

    from healthsec.detect.artefacts_load import load_artefact
    from healthsec.model import Flow

    files = {
        "flows": synth.flow_files,
        "flows-federated": synth.federated_files,
        "devices": synth.device_files,
        "telemetry": synth.telemetry_files,
    }[kind]()
    loaded = load_artefact(dataclasses.replace(synth.artefact_of(kind, files), version=1), files)
    if kind == "telemetry":
        return loaded, [], synth.readings(30, 6, attack_every=3)[0]
    if kind in ("flows", "flows-federated"):
        flows = synth.flows_of(synth.flow_frame(200, 11))
        odd = [
            dataclasses.replace(f, id=f"odd{i}", features={**f.features, "src_bytes": 1e9})
            for i, f in enumerate(flows[:5])
        ]
        return loaded, [], flows + odd
    events: list[Event] = []
    for k, (device, minutes) in enumerate((("infusion-pump", 0), ("monitor", 60))):
        cap = synth.device_capture(device, 7 + k, n=25, seed=9)
        events += [
            Flow(
                id=f"{device}-{i}",
                ts=synth.T0 + timedelta(minutes=minutes, seconds=i),
                source="synthetic",
                src_ip="10.2.0.5",
                dst_ip="10.0.1.1",
                application="TLS",
                features={**row, "requested_server_name": cap.server_names[i]},
            )
            for i, row in enumerate(cap.frame.to_dicts())
        ]
    return loaded, [], events


@pytest.mark.parametrize("name", [s.name for s in REGISTRY])
def test_every_registered_detector_conforms(days: tuple[list[Event], list[Event], Any], name: str) -> None:
    from healthsec.detect.rules.sigma import parse_rules

    spec = BY_NAME[name]
    make: Callable[[], Any]
    if spec.needs == "model":
        assert spec.model_kind is not None and spec.model_factory is not None
        loaded, baseline, events = _model_case(spec.model_kind)
        factory = spec.model_factory

        def make() -> Any:
            return factory(loaded)

        # the device detector remembers a host's first identity (inventory, not an alert) from its first
        # batch: the kit's detector has seen the first device, then is given the swapped one
        if spec.model_kind == "devices":
            first_batch, events = events[:25], events[25:]

            def make() -> Any:
                det = factory(loaded)
                assert det.detect(first_batch) == []
                return det
    else:
        base, day, assets = days
        ctx = DetectorContext(
            assets=tuple(assets),
            sigma_rules=parse_rules([("kit.yml", SIGMA)]),
            care_context=CareContext(),
            phi_key=b"k" * 32,
            seed=9,
        )
        assert spec.factory is not None
        factory_ctx = spec.factory

        def make() -> Any:
            return factory_ctx(ctx)

        baseline = [e for e in base if e.kind in spec.kinds]
        events = [e for e in day if e.kind in spec.kinds] + REAL.get(name, list)()
    assert events, f"no test events of kinds {sorted(spec.kinds)} for {name}"
    alerts = check_detector(make, baseline, events)
    assert alerts, f"{name} raised nothing on an attacked day"


def _eve_alerts() -> list[Event]:
    """Real Suricata alerts (the simulated day has no sensor alerts for external-alerts to relay)."""
    from tests.conftest import SHARED_DATA

    from healthsec.ingest.siem.eve import EveSource

    eve = SHARED_DATA / "suricata-eve-samples" / "frankhassanabad-alerts" / "honeypot-2018-alerts-only.json"
    return [e for e in EveSource(eve).read() if isinstance(e, EventBase)]


def _hl7_attacks() -> list[Event]:
    """Real CDC HL7 messages with documented attacks inserted (the simulated day has no HL7 attack)."""
    from tests.conftest import SHARED_DATA

    from healthsec.ingest.hl7 import message_event
    from healthsec.testing import hl7_attacks

    folder = SHARED_DATA / "hl7v2-fhir-samples-cdc" / "examples" / "CA"
    carriers = [p.read_text(errors="replace") for p in sorted(folder.rglob("*")) if p.is_file()]
    rng = random.Random(9)
    out: list[Event] = []
    for attack in (hl7_attacks.sql_injection, hl7_attacks.malformed_structure, hl7_attacks.unknown_sender):
        for k, text in enumerate(attack(carriers[0], rng)):
            when = datetime(2026, 3, 3, 9, len(out), tzinfo=UTC)
            out.append(message_event(text, source="kit", locator=attack.__name__, record=k, received=when))
    return out


# Detectors that the simulated day gives no reason to alert are also given real input that does.
REAL: dict[str, Callable[[], list[Event]]] = {"external-alerts": _eve_alerts, "hl7": _hl7_attacks}


def _source_cases(shared: Path, tmp: Path, feed: tuple[str, int]) -> dict[str, Callable[[], Any]]:
    from healthsec.ingest import IterableSource
    from healthsec.ingest.dicom import DicomFileSource
    from healthsec.ingest.fhir import AuditEventFileSource
    from healthsec.ingest.flows import FlowFileSource
    from healthsec.ingest.hl7 import HL7FileSource, HL7PcapSource
    from healthsec.ingest.logs import LogFileSource
    from healthsec.ingest.telemetry import MqttTelemetrySource, TelemetryCsvSource

    def head(name: str, rows: int, bad: str) -> Path:
        """The first ``rows`` records of a real gzipped CSV, then one malformed record."""
        with gzip.open(shared / name, "rt", encoding="utf-8-sig") as f:
            lines = list(itertools.islice(f, rows + 1))
        out = tmp / Path(name).name.removesuffix(".gz")
        out.write_text("".join(lines) + bad)
        return out

    flows = head("unsw-nb15/UNSW_NB15_training-set.csv.gz", 200, "201,0.5\n")
    audit = tmp / "audit.ndjson"
    from tests.unit.clinical_fhir.test_fhir_auditevent import audit as audit_event

    audit.write_text(json.dumps(audit_event()) + "\nnot json\n")
    telemetry = head(
        "ton-iot-telemetry/Train_Test_IoT_Fridge.csv.gz", 200, "25-Apr-19, 19:19:41 ,x,high,1,ddos\n"
    )
    hl7 = shared / "hl7v2-fhir-samples-cdc" / "examples" / "CA"
    from healthsec.ingest.siem.eve import EveSource
    from healthsec.ingest.siem.netflow import NetflowFileSource
    from healthsec.ingest.siem.wazuh import WazuhAlertsSource

    eve_real = shared / "suricata-eve-samples" / "frankhassanabad-alerts" / "honeypot-2018-alerts-only.json"
    eve = tmp / "eve.json"
    eve.write_text(
        "".join(json.dumps(r) + "\n" for r in json.loads(eve_real.read_text())[:50]) + "not json\n"
    )
    wazuh = tmp / "alerts.json"
    wazuh.write_text(
        json.dumps(
            {
                "timestamp": "2026-05-22T11:00:00.000+0000",
                "rule": {"level": 10, "description": "sshd: brute force", "id": "5712"},
                "agent": {"id": "002", "name": "pacs-01", "ip": "10.1.2.3"},
                "data": {"srcip": "203.0.113.9"},
            }
        )
        + "\ngarbage\n"
    )
    netflow = sorted((shared / "netflow-ipfix-captures" / "pmacct").glob("*NFv9*/traffic-00.pcap"))[:1]
    return {
        "EveSource": lambda: EveSource(eve),
        "WazuhAlertsSource": lambda: WazuhAlertsSource(wazuh),
        "NetflowFileSource": lambda: NetflowFileSource(netflow),
        "IterableSource": lambda: IterableSource("sim", simulate(9, day=1).events[:200]),
        "FlowFileSource": lambda: FlowFileSource(str(flows), "csv", "attack_cat"),
        "LogFileSource": lambda: LogFileSource(
            shared
            / "otrf-security-datasets"
            / "datasets"
            / "atomic"
            / "windows"
            / "credential_access"
            / "host"
            / "empire_mimikatz_logonpasswords.zip",
            fmt="auto",
            name="logs",
        ),
        "HL7FileSource": lambda: HL7FileSource([hl7]),
        "HL7PcapSource": lambda: HL7PcapSource(
            sorted((shared / "protocol-pcaps-ndpi" / "pcap").glob("hl7*.pcap"))
        ),
        "DicomFileSource": lambda: DicomFileSource(
            [shared / "dicom-samples" / "pydicom_test_files" / "CT_small.dcm", audit]
        ),
        "AuditEventFileSource": lambda: AuditEventFileSource([audit]),
        "TelemetryCsvSource": lambda: TelemetryCsvSource(telemetry, "ton-iot"),
        "MqttTelemetrySource": lambda: MqttTelemetrySource(
            *MQTT, [f"{feed[0]}/#"], max_messages=feed[1], idle_timeout=5
        ),
    }


MQTT = ("127.0.0.1", 1883)


@pytest.fixture
def mqtt_feed(shared_data: Path) -> Iterator[tuple[str, int]]:
    """Real TON_IoT fridge readings as retained messages on the local Mosquitto, one topic per reading
    (a subscriber gets every one on each subscription), plus a malformed one and one without its own
    time; (topic prefix, message count), cleared afterwards."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    with gzip.open(
        shared_data / "ton-iot-telemetry" / "Train_Test_IoT_Fridge.csv.gz", "rt", encoding="utf-8-sig"
    ) as f:
        rows = list(itertools.islice(csv.DictReader(f), 20))
    prefix = f"hstest/{uuid.uuid4().hex}"
    messages = [
        (
            f"{prefix}/fridge-{i}/telemetry",
            json.dumps(
                {
                    "ts": datetime.strptime(r["date"] + r["time"].strip(), "%d-%b-%y%H:%M:%S")
                    .replace(tzinfo=UTC)
                    .isoformat(),
                    "fridge_temperature": r["fridge_temperature"],
                }
            ),
        )
        for i, r in enumerate(rows)
    ]
    messages += [
        (f"{prefix}/fridge-x/telemetry", "{truncated"),
        (f"{prefix}/fridge-y/telemetry", '{"t": 4.5}'),
    ]
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"kit-{uuid.uuid4().hex[:8]}")
    pub.connect(*MQTT)
    pub.loop_start()
    try:
        for topic, payload in messages:
            pub.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
        yield prefix, len(messages)
    finally:
        for topic, _ in messages:
            pub.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        pub.loop_stop()
        pub.disconnect()


def _source_classes() -> set[str]:
    import healthsec.ingest as ingest

    found = set()
    for mod in pkgutil.walk_packages(ingest.__path__, "healthsec.ingest."):
        module = importlib.import_module(mod.name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                cls.__module__ == mod.name
                and callable(getattr(cls, "read", None))
                and not cls_name.startswith("_")
                and cls_name != "Source"  # the protocol itself
            ):
                found.add(cls_name)
    return found


SOURCES = [
    "IterableSource",
    "FlowFileSource",
    "LogFileSource",
    "HL7FileSource",
    "HL7PcapSource",
    "DicomFileSource",
    "AuditEventFileSource",
    "TelemetryCsvSource",
    "EveSource",
    "WazuhAlertsSource",
    "NetflowFileSource",
    "MqttTelemetrySource",
]
LIVE = {"MqttTelemetrySource"}  # reads the local Mosquitto (integration)


def test_every_ingest_source_is_checked(shared_data: Path, tmp_path: Path) -> None:
    cases = set(_source_cases(shared_data, tmp_path, ("", 0)))
    assert _source_classes() == cases == set(SOURCES), "every ingest source has exactly one conformance case"


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.integration] if n in LIVE else []) for n in SOURCES]
)
def test_every_ingest_source_conforms(
    shared_data: Path, tmp_path: Path, name: str, request: pytest.FixtureRequest
) -> None:
    feed = request.getfixturevalue("mqtt_feed") if name in LIVE else ("", 0)
    events, errors = check_source(_source_cases(shared_data, tmp_path, feed)[name])
    assert events, f"{name} read no event"
    if name in {
        "MqttTelemetrySource",
        "FlowFileSource",
        "AuditEventFileSource",
        "DicomFileSource",
        "TelemetryCsvSource",
        "EveSource",
        "WazuhAlertsSource",
    }:
        assert errors, f"{name}: the malformed record was not reported as a parse error"
