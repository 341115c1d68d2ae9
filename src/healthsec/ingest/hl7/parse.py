"""Turn raw HL7 v2 text into ClinicalMessage events: tolerant splitting, python-hl7 parsing, checks."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone

import hl7

from healthsec.ingest.hl7.visit import visit_fields
from healthsec.model import ClinicalMessage, Provenance, stable_id

SEGMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")
BATCH_SEGMENTS = frozenset({"FHS", "BHS", "BTS", "FTS"})
KNOWN_VERSIONS = re.compile(r"^2\.(1|2|3|3\.1|4|5|5\.1|6|7|7\.1|8|8\.1|8\.2|9)$")
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?$")
QUERY_SEGMENTS = ("QPD", "QRD")
PARSED_SEGMENTS = frozenset({"MSH", "PID", "QPD", "QRD", "MSA"})


def normalise(text: str) -> str:
    """One segment per ``\\r``: the CDC samples mix CR, LF and CRLF separators."""
    return re.sub(r"\r\n|\n|\r", "\r", text).strip("\r\n\t ")


def split_messages(text: str) -> list[str]:
    """Split a file or stream body into messages; batch envelopes (FHS/BHS/BTS/FTS) are dropped.

    Hand-written because python-hl7's ``parse_batch``/``parse_file`` raise on the first odd line,
    and the real samples contain junk lines and batch headers we want to tolerate.
    """
    messages: list[list[str]] = []
    for seg in normalise(text).split("\r"):
        line = seg.strip("\n\t ")
        if not line or line[:3] in BATCH_SEGMENTS:
            continue
        if line.startswith("MSH") or not messages:
            messages.append([line])
        else:
            messages[-1].append(line)
    return ["\r".join(m) for m in messages]


def parse_hl7_ts(value: str) -> datetime | None:
    """HL7 DTM (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]) to aware UTC; no zone means UTC (stated)."""
    m = _TS.match(value.strip())
    if not m:
        return None
    year, month, day, hour, minute, second, zone = m.groups()
    tz = UTC
    if zone:
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])))
    try:
        ts = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=tz,
        )
    except ValueError:
        return None
    return ts.astimezone(UTC)


def _field(msh: list[str], n: int) -> str:
    """MSH-n from the raw split (index 0 is the segment name, index 1 the field separator)."""
    return msh[n] if len(msh) > n else ""


def _first(value: str, comp: str) -> str:
    return value.split(comp, 1)[0]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def check_structure(text: str) -> tuple[list[str], list[str] | None]:
    """Structural problems of one message and its raw MSH fields (None when there is no MSH)."""
    errors: list[str] = []
    if not text.startswith("MSH") or len(text) < 4:
        return ["message does not start with an MSH segment"], None
    sep = text[3]
    msh = ["MSH", *text.split("\r", 1)[0][4:].split(sep)]
    msh[0:1] = ["MSH", sep]  # MSH-1 is the separator, MSH-2 the encoding characters
    enc = _field(msh, 2)
    if len(enc) < 4 or len(set(enc + sep)) != len(enc + sep):
        errors.append("MSH-2 encoding characters missing or invalid")
    for n, what in ((9, "message type"), (10, "message control id"), (12, "version id")):
        if not _field(msh, n).strip():
            errors.append(f"MSH-{n} {what} missing")
    version = _first(_field(msh, 12), enc[:1] or "^").strip()
    if version and not KNOWN_VERSIONS.match(version):
        errors.append(f"MSH-12 version {version[:20]!r} is not an HL7 v2 version")
    ts = _field(msh, 7)
    if ts.strip() and parse_hl7_ts(_first(ts, enc[:1] or "^")) is None:
        errors.append("MSH-7 date/time of message is not a valid HL7 timestamp")
    for i, seg in enumerate(text.split("\r"), start=1):
        name = seg.split(sep, 1)[0]
        if not SEGMENT_NAME.match(name):
            errors.append(f"segment {i} has an invalid name {name[:12]!r}")
    if CONTROL_CHARS.search(text):
        errors.append("message contains control characters")
    return errors, msh


def message_event(
    text: str,
    *,
    source: str,
    locator: str,
    record: int | None,
    received: datetime,
    src_ip: str | None = None,
    dst_ip: str | None = None,
    size: int | None = None,
    extra_errors: Sequence[str] = (),
    live: bool = False,
) -> ClinicalMessage:
    """Build one ``ClinicalMessage`` from one message's text; problems go to ``fields['errors']``.

    Every message received becomes an event (it is traffic that happened), even when it cannot be
    parsed: the malformed-message detector needs to see it.
    """
    text = normalise(text)
    errors, msh = check_structure(text) if text else ([], None)
    errors = [*extra_errors, *errors] if extra_errors else errors
    if not text and not extra_errors:
        errors = ["empty message"]
    fields: dict[str, object] = {"errors": errors, "text": text, "segments": []}
    if live:  # rate detectors count on the receive time, which a sender cannot forge
        fields["received_at"] = received.isoformat()
    sender = receiver = patient = None
    message_type = "UNPARSEABLE"
    ts = received
    if msh is not None:
        enc = _field(msh, 2) or "^~\\&"
        comp = enc[0]
        sender = f"{_first(_field(msh, 3), comp)}|{_first(_field(msh, 4), comp)}"
        receiver = f"{_first(_field(msh, 5), comp)}|{_first(_field(msh, 6), comp)}"
        parts = _field(msh, 9).split(comp)
        code, trigger = parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")
        message_type = f"{code}^{trigger}" if trigger else (code or "UNKNOWN")
        sent = parse_hl7_ts(_first(_field(msh, 7), comp)) if _field(msh, 7).strip() else None
        ts = sent or received
        fields.update(
            code=code or None,
            trigger=trigger or None,
            control_id=_field(msh, 10).strip() or None,
            processing_id=_field(msh, 11).strip() or None,
            version=_first(_field(msh, 12), comp).strip() or None,
            sent_at=sent.isoformat() if sent else None,
        )
        try:
            patient, extra = _parse_body(text)
            fields.update(extra)
            if "PV1" in extra["segments"] or "ROL" in extra["segments"]:  # type: ignore[operator]
                fields.update(visit_fields(text.split("\r"), msh[1], enc))
        except Exception as exc:  # python-hl7 raises IndexError/ParseException on broken input
            errors.append(f"python-hl7 could not parse the message: {type(exc).__name__}")
    raw_size = size if size is not None else len(text.encode("utf-8", "replace"))
    return ClinicalMessage(
        id=stable_id("hl7", source, locator, record, _digest(text), received.isoformat()),
        ts=ts,
        source=source,
        provenance=Provenance(source=source, locator=locator, record=record, ingested_at=received),
        protocol="hl7",
        message_type=message_type,
        sender=sender,
        receiver=receiver,
        src_ip=src_ip,
        dst_ip=dst_ip,
        size=raw_size,
        patient_id=patient,
        fields=fields,
    )


def _parse_body(text: str) -> tuple[str | None, dict[str, object]]:
    """Parse with python-hl7 and pull out the patient, query targets and acknowledgement.

    Only the segments read here go through python-hl7 (a full parse of a 200-OBX result spends most
    of its time building containers nobody reads); every segment is still checked and named.
    """
    lines = text.split("\r")
    names = [line[:3] for line in lines]
    msg = hl7.parse("\r".join(line for line in lines if line[:3] in PARSED_SEGMENTS))
    extra: dict[str, object] = {"segments": names}
    patient: str | None = None
    if "PID" in names:
        pid = msg.segment("PID")
        ident = str(pid[3]) if len(pid) > 3 else ""
        cx = ident.split("~", 1)[0].split("^")
        patient = cx[0].strip() or None
        if patient and len(cx) > 3:  # CX.4 assigning authority: the same MRN from two authorities differs
            subs = cx[3].split("&")
            authority = (subs[0] or (subs[1] if len(subs) > 1 else "")).strip()
            if authority:
                extra["patient_authority"] = authority
    targets: list[str] = []
    for seg in msg:
        name = str(seg[0])
        if name == "QPD" and len(seg) > 3:
            targets.append(str(seg[3]).strip())
        elif name == "QRD" and len(seg) > 8:
            targets.append(str(seg[8]).strip())
    if targets:
        extra["query_targets"] = targets
    if "MSA" in names:
        msa = msg.segment("MSA")
        extra["ack_code"] = (str(msa[1]).strip() or None) if len(msa) > 1 else None
        extra["ack_control_id"] = (str(msa[2]).strip() or None) if len(msa) > 2 else None
    return patient, extra


def iter_text_events(
    text: str,
    *,
    source: str,
    locator: str,
    received: datetime,
    src_ip: str | None = None,
    dst_ip: str | None = None,
) -> Iterator[ClinicalMessage]:
    """Events for every message in ``text`` (a file body, a batch, or one MLLP block)."""
    for i, msg in enumerate(split_messages(text), start=1):
        yield message_event(
            msg, source=source, locator=locator, record=i, received=received, src_ip=src_ip, dst_ip=dst_ip
        )
