"""Malformed input: validation names the record and field; unreadable bus envelopes are poison."""

from __future__ import annotations

import pytest

from healthsec.api.ingest import validate_event
from healthsec.bus.envelope import EventBatch, PoisonMessage, decode_batch, encode_batch
from healthsec.bus.worker import decode_events
from healthsec.model import Flow

GOOD = {
    "kind": "flow",
    "id": "f1",
    "ts": "2026-01-01T00:00:00Z",
    "source": "zeek",
    "src_ip": "10.0.0.1",
    "dst_ip": "10.0.0.2",
    "dst_port": 104,
}


def test_valid_flow_is_built() -> None:
    errors, event = validate_event(0, GOOD)
    assert errors == []
    assert isinstance(event, Flow)
    assert event.dst_port == 104
    assert event.ts.tzinfo is not None


@pytest.mark.parametrize(
    ("raw", "loc", "kind"),
    [
        ([1, 2], ["body", "events", 3], "object_type"),
        ({**GOOD, "kind": "pcap"}, ["body", "events", 3, "kind"], "enum"),
        ({**GOOD, "colour": "red"}, ["body", "events", 3, "colour"], "extra_forbidden"),
        ({**GOOD, "dst_port": "http"}, ["body", "events", 3, "dst_port"], "int_type"),
        # strict types, as the published schema says (schemathesis sent these and they were accepted)
        ({**GOOD, "dst_port": False}, ["body", "events", 3, "dst_port"], "int_type"),
        ({**GOOD, "dst_port": "104"}, ["body", "events", 3, "dst_port"], "int_type"),
        ({**GOOD, "dst_port": 104.5}, ["body", "events", 3, "dst_port"], "int_type"),
        ({**GOOD, "duration": True}, ["body", "events", 3, "duration"], "float_type"),
        ({**GOOD, "ts": 1767225600}, ["body", "events", 3, "ts"], "datetime_type"),
        # unknown provenance keys and control characters in free-form keys (schemathesis found both)
        (
            {**GOOD, "provenance": {"source": "zeek", "colour": "red"}},
            ["body", "events", 3, "provenance", "colour"],
            "extra_forbidden",
        ),
        (
            {
                "kind": "log",
                "id": "l1",
                "ts": "2026-01-01T00:00:00Z",
                "source": "evtx",
                "fields": {"a\x7f": 1},
            },
            ["body", "events", 3, "fields", "<key>"],
            "value_error",
        ),
        # integers fit 64 bits, as published (beyond that orjson reads a float, which strict mode refuses)
        ({**GOOD, "dst_port": 2**63}, ["body", "events", 3, "dst_port"], "value_error"),
        (
            {**GOOD, "provenance": {"source": "zeek", "record": 2**63}},
            ["body", "events", 3, "provenance", "record"],
            "value_error",
        ),
        ({**GOOD, "dst_port": -(2**63) - 1}, ["body", "events", 3], "value_error"),
        # nested strings too: a control character in the provenance (schemathesis found it accepted)
        (
            {**GOOD, "provenance": {"source": "zeek", "sensor": "tap\x0f1"}},
            ["body", "events", 3, "provenance", "sensor"],
            "value_error",
        ),
        ({**GOOD, "src_ip": 5}, ["body", "events", 3, "src_ip"], "string_type"),
        ({k: v for k, v in GOOD.items() if k != "id"}, ["body", "events", 3, "id"], "missing"),
    ],
)
def test_errors_name_record_and_field(raw: object, loc: list[object], kind: str) -> None:
    errors, event = validate_event(3, raw)
    assert event is None
    assert errors[0]["loc"] == loc
    assert errors[0]["type"] == kind


LOG = {"kind": "log", "id": "l1", "ts": "2026-01-01T00:00:00Z", "source": "evtx", "fields": {}}


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        ({**LOG, "fields": {"CommandLine": "a\x00b"}}, ["fields", "CommandLine"]),
        ({**LOG, "fields": {"Nested": {"deep": ["ok", "x\x0by"]}}}, ["fields", "Nested", "deep", 1]),
        ({**LOG, "fields": {"k": "del\x7f"}}, ["fields", "k"]),
        ({**LOG, "fields": {"k": "bell\x07"}}, ["fields", "k"]),
        ({**LOG, "fields": {"k\x01": "v"}}, ["fields", "<key>"]),
        ({**LOG, "host": "ws\x08"}, ["host"]),
        ({**LOG, "id": "l\n1"}, ["id"]),
    ],
)
def test_control_characters_anywhere_in_an_event_are_refused_naming_the_field(
    raw: dict[str, object], loc: list[object]
) -> None:
    errors, event = validate_event(0, raw)
    assert event is None and errors, raw
    assert errors[0]["loc"][3:] == loc and "control character" in errors[0]["msg"]


@pytest.mark.parametrize("text", ["tab\tnew\nline\r", "C:\\bin\\find.exe", "\\foo", "é ü ✓"])
def test_text_with_tabs_newlines_and_backslashes_is_accepted(text: str) -> None:
    errors, event = validate_event(0, {**LOG, "fields": {"Message": text}})
    assert errors == [] and event is not None and event.fields["Message"] == text


def test_whole_floats_are_integers() -> None:
    # JSON Schema counts 104.0 as an integer (schemathesis sent it); strict mode alone refused it
    errors, event = validate_event(
        0, {**GOOD, "dst_port": 104.0, "provenance": {"source": "z", "record": 7.0}}
    )
    assert errors == [] and isinstance(event, Flow)
    assert (event.dst_port, event.provenance and event.provenance.record) == (104, 7)
    assert isinstance(event.dst_port, int)
    # what orjson makes of -9223372036854775809 (one below the range): a float that rounds to -(2**63)
    errors, event = validate_event(0, {**GOOD, "dst_port": float(-(2**63) - 1)})
    assert event is None and errors[0]["loc"] == ["body", "events", 0, "dst_port"]


def test_naive_timestamp_refused() -> None:
    errors, event = validate_event(0, {**GOOD, "ts": "2026-01-01T00:00:00"})
    assert event is None
    assert errors[0]["loc"][:3] == ["body", "events", 0]
    assert "time zone" in errors[0]["msg"]


def test_envelope_roundtrip_and_stable_id() -> None:
    batch = EventBatch(org="north", events=[GOOD])
    back = decode_batch(encode_batch(batch))
    assert back.org == "north"
    assert list(back.events) == [GOOD]
    assert back.msg_id == batch.msg_id
    assert EventBatch(org="south", events=[GOOD]).msg_id != batch.msg_id


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\x00", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"v": 9, "org": "a", "events": []}', "unsupported envelope version"),
        (b'{"v": 1, "events": []}', "no organisation"),
        (b'{"v": 1, "org": "a", "events": [1]}', "not a list of objects"),
    ],
)
def test_poison_envelopes(data: bytes, reason: str) -> None:
    with pytest.raises(PoisonMessage, match=reason):
        decode_batch(data)


def test_poison_event_names_its_index() -> None:
    batch = EventBatch(org="a", events=[GOOD, {**GOOD, "id": "f2", "kind": "bogus"}])
    with pytest.raises(PoisonMessage, match=r"event #1 \(id 'f2'\)"):
        decode_events(batch)


@pytest.mark.parametrize(
    "raw",
    [
        {
            **GOOD,
            "features": {"a": 1.0, "b": "x", "c": None},
            "provenance": {
                "source": "zeek",
                "locator": "conn.log",
                "record": 3,
                "sensor": "s1",
                "ingested_at": "2026-01-01T00:00:01Z",
            },
        },
        {
            "kind": "log",
            "id": "l",
            "ts": "2026-01-01T01:00:00+01:00",
            "source": "s",
            "event_id": 4688,
            "fields": {"a": [1, 2], "b": {"c": 1}},
        },
        {
            "kind": "reading",
            "id": "r",
            "ts": "2026-01-01T00:00:00Z",
            "source": "s",
            "device_id": "d",
            "metrics": {"hr": 70.0, "spo2": None},
        },
        {
            "kind": "access",
            "id": "a",
            "ts": "2026-01-01T00:00:00Z",
            "source": "s",
            "user": "u",
            "action": "export",
            "records": 3,
        },
        {
            "kind": "clinical",
            "id": "c",
            "ts": "2026-01-01T00:00:00Z",
            "source": "s",
            "protocol": "hl7",
            "message_type": "ADT^A01",
            "fields": {"MSH": "x"},
        },
    ],
)
def test_bus_body_round_trips_through_the_codec(raw: dict[str, object]) -> None:
    """What the API puts on the bus is read back by the codec into the very same event."""
    from healthsec.api.ingest import _ADAPTERS
    from healthsec.model.codec import event_from_dict

    errors, event = validate_event(0, raw)
    assert errors == []
    assert event is not None
    body = {**_ADAPTERS[event.kind].dump_python(event, mode="json"), "kind": event.kind}
    assert event_from_dict(body) == event


def test_transient_store_errors_are_not_poison() -> None:
    import psycopg
    from sqlalchemy.exc import DataError, OperationalError

    from healthsec.bus.worker import is_transient

    assert is_transient(OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused")))
    assert is_transient(psycopg.OperationalError("server closed the connection"))
    assert is_transient(ConnectionResetError())
    assert not is_transient(DataError("INSERT", {}, psycopg.errors.StringDataRightTruncation("too long")))
    assert not is_transient(psycopg.errors.StringDataRightTruncation("value too long"))
    assert not is_transient(ValueError("detector bug"))
