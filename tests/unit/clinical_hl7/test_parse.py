"""HL7 v2 parsing: malformed input first, then the real variety of the CDC samples."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from healthsec.ingest.hl7 import (
    HL7FileSource,
    MllpDecoder,
    ack_code_of,
    build_ack,
    frame,
    message_event,
    split_messages,
)
from healthsec.ingest.hl7.parse import parse_hl7_ts
from healthsec.model import ClinicalMessage, ParseError

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
GOOD = (
    "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240102030405||ORU^R01^ORU_R01|C123|P|2.5.1"
    "\rPID|1||MRN42^^^H||DOE^JANE\rOBX|1|NM|x||5"
)


def ev(text: str) -> ClinicalMessage:
    return message_event(text, source="t", locator="mem", record=1, received=NOW)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty message"),
        ("hello", "message does not start with an MSH segment"),
        ("MSH|", "MSH-9 message type missing"),
        (GOOD.replace("ORU^R01^ORU_R01", ""), "MSH-9 message type missing"),
        (GOOD.replace("|C123|", "||"), "MSH-10 message control id missing"),
        (GOOD.replace("^~\\&", ""), "MSH-2 encoding characters missing or invalid"),
        (GOOD.replace("|2.5.1", "|9.9"), "MSH-12 version '9.9' is not an HL7 v2 version"),
        (
            GOOD.replace("20240102030405", "yesterday"),
            "MSH-7 date/time of message is not a valid HL7 timestamp",
        ),
        (GOOD + "\rP\x01D|1", "message contains control characters"),
        (GOOD + "\rbad segment", "segment 4 has an invalid name 'bad segment'"),
    ],
)
def test_malformed_messages_become_events_with_named_errors(text: str, reason: str) -> None:
    e = ev(text)
    assert reason in e.fields["errors"]  # type: ignore[operator]


def test_good_message_fields() -> None:
    e = ev(GOOD)
    assert e.fields["errors"] == []
    assert (e.message_type, e.sender, e.receiver, e.patient_id) == (
        "ORU^R01",
        "LAB|HOSP",
        "EHR|HOSP",
        "MRN42",
    )
    assert e.fields["control_id"] == "C123" and e.fields["version"] == "2.5.1"
    assert e.ts == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert e.fields["segments"] == ["MSH", "PID", "OBX"]


def test_ids_are_stable() -> None:
    assert ev(GOOD).id == ev(GOOD).id
    assert ev(GOOD).id != ev(GOOD + "\rNTE|1").id


def test_timestamps_with_zone_and_precision() -> None:
    assert parse_hl7_ts("20230101010000-0500") == datetime(2023, 1, 1, 6, 0, tzinfo=UTC)
    assert parse_hl7_ts("202301") == datetime(2023, 1, 1, tzinfo=UTC)
    assert parse_hl7_ts("20231301") is None


def test_split_handles_lf_crlf_and_batch_envelopes() -> None:
    body = (
        "FHS|^~\\&\r\nBHS|^~\\&\n"
        + GOOD.replace("\r", "\n")
        + "\r\n"
        + GOOD.replace("C123", "C124")
        + "\nBTS|2\nFTS|1"
    )
    msgs = split_messages(body)
    assert len(msgs) == 2 and all(m.startswith("MSH") for m in msgs)
    assert [ev(m).fields["control_id"] for m in msgs] == ["C123", "C124"]


def test_mllp_decoder_resyncs_after_junk_and_cuts_oversized() -> None:
    dec = MllpDecoder(max_size=50)
    out = dec.feed(b"junk" + frame("MSH|a") + frame("X" * 80) + frame("MSH|b")[:4])
    assert out == [b"MSH|a", None]
    assert dec.pending == 4 and dec.junk_bytes == 4 and dec.oversized == 1
    assert dec.feed(frame("MSH|b")[4:]) == [b"MSH|b"]


def test_acks_carry_reason_and_reference() -> None:
    ack = build_ack(GOOD, "AE", ["segment 4 has an invalid name"])
    assert ack_code_of(ack) == "AE"
    msa = next(s for s in ack.split("\r") if s.startswith("MSA"))
    assert msa.split("|")[2] == "C123" and "invalid name" in msa
    assert "ERR|||102^Data type error^HL70357" in ack
    assert "DOE" not in ack and "MRN42" not in ack  # no PHI echoed back
    minimal = build_ack("MSH|", "AR", ["MSH-9 message type missing"])
    assert ack_code_of(minimal) == "AR" and "101^Required field missing" in minimal


def test_file_source_reads_every_cdc_sample(shared_data: Path) -> None:
    root = shared_data / "hl7v2-fhir-samples-cdc" / "examples"
    items = list(HL7FileSource([root]).read())
    events = [i for i in items if isinstance(i, ClinicalMessage)]
    errors = [i for i in items if isinstance(i, ParseError)]
    assert len(events) == 131  # SOURCE.md counts 131 MSH segments in 132 files
    assert [Path(e.locator).name for e in errors] == ["empty.hl7"]
    types = {e.message_type for e in events}
    assert {"ORU^R01", "OML^O21", "ORM^O01", "ADT^A01", "ACK"} <= types
    versions = {e.fields.get("version") for e in events}
    assert {"2.5.1", "2.3"} <= versions
    clean = [e for e in events if not e.fields["errors"]]
    assert len(clean) >= 124
