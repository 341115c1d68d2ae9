"""The domain model: frozen objects, UTC only, stable ids, a codec that round-trips and refuses junk."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from healthsec.model import (
    Alert,
    DeviceReading,
    Entity,
    EntityKind,
    EntityRole,
    Flow,
    Incident,
    LogRecord,
    Severity,
    stable_id,
)
from healthsec.model.codec import alert_from_dict, event_from_dict, incident_from_dict, to_dict

T = datetime(2026, 3, 3, 9, 30, tzinfo=UTC)


def test_stable_id_is_deterministic_and_sensitive() -> None:
    assert stable_id("ev", "a", 1) == stable_id("ev", "a", 1)
    assert stable_id("ev", "a", 1) != stable_id("ev", "a", 2)
    assert stable_id("ev", None, 1) != stable_id("ev", "None ", 1)


def test_naive_timestamps_are_refused_and_offsets_become_utc() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        Flow(id="f1", ts=datetime(2026, 3, 3, 9, 30), source="t", src_ip="10.0.0.1", dst_ip="10.0.0.2")
    f = Flow(
        id="f1",
        ts=datetime(2026, 3, 3, 11, 30, tzinfo=timezone(timedelta(hours=2))),
        source="t",
        src_ip="10.0.0.1",
        dst_ip="10.0.0.2",
    )
    assert f.ts == T and f.ts.tzinfo is UTC


def test_events_are_frozen_and_missing_values_are_none() -> None:
    f = Flow(id="f1", ts=T, source="t", src_ip="10.0.0.1", dst_ip=None)
    assert f.bytes_out is None and f.duration is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.src_ip = "x"  # type: ignore[misc]


def test_codec_round_trips_every_event_kind() -> None:
    events = [
        Flow(
            id="f1",
            ts=T,
            source="t",
            src_ip="10.0.0.1",
            dst_ip="10.0.0.2",
            dst_port=443,
            bytes_out=10,
            features={"ttl": 64.0},
        ),
        LogRecord(
            id="l1",
            ts=T,
            source="t",
            host="ws-1",
            channel="Security",
            event_id=4625,
            fields={"IpAddress": "10.0.0.9"},
        ),
        DeviceReading(id="r1", ts=T, source="t", device_id="m1", metrics={"heart_rate": 72.0, "spo2": None}),
    ]
    for e in events:
        assert event_from_dict(to_dict(e)) == e


def test_codec_names_unknown_kinds_and_fields() -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        event_from_dict({"kind": "telepathy", "id": "x", "ts": T.isoformat(), "source": "t"})
    bad = to_dict(Flow(id="f1", ts=T, source="t", src_ip="1.1.1.1", dst_ip="2.2.2.2"))
    bad["colour"] = "blue"
    with pytest.raises(ValueError, match="colour"):
        event_from_dict(bad)


def test_alert_needs_an_explanation_and_round_trips() -> None:
    kwargs = dict(
        id="a1",
        ts=T,
        detector="d",
        detector_version="1",
        title="t",
        score=0.5,
        severity=Severity.HIGH,
        evidence=("f1",),
        techniques=("T1046",),
        entities=(Entity(EntityKind.IP, "10.0.0.1", EntityRole.ACTOR),),
    )
    with pytest.raises(ValueError, match="no explanation"):
        Alert(explanation="  ", **kwargs)  # type: ignore[arg-type]
    a = Alert(explanation="because", **kwargs)  # type: ignore[arg-type]
    assert alert_from_dict(to_dict(a)) == a


def test_incident_needs_alerts_and_round_trips() -> None:
    with pytest.raises(ValueError, match="no alerts"):
        Incident(id="i", title="t", first_seen=T, last_seen=T, severity=Severity.LOW, score=0, alert_ids=())
    inc = Incident(
        id="i",
        title="t",
        first_seen=T,
        last_seen=T,
        severity=Severity.LOW,
        score=0.1,
        alert_ids=("a1",),
        membership={"a1": 1.0},
    )
    assert incident_from_dict(to_dict(inc)) == inc
