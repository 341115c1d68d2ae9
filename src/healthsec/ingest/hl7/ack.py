"""HL7 v2 acknowledgements: build ACK/NACK (python-hl7 ``create_ack``) and read the code of one."""

from __future__ import annotations

from datetime import UTC, datetime

import hl7

from healthsec.model import stable_id

# HL7 table 0357 message error condition codes used in ERR-3.
ERR_REQUIRED_FIELD_MISSING = "101^Required field missing^HL70357"
ERR_DATA_TYPE = "102^Data type error^HL70357"
ERR_UNSUPPORTED = "200^Unsupported message type^HL70357"
ERR_INTERNAL = "207^Application internal error^HL70357"


def _clean(text: str) -> str:
    """Free text safe inside one HL7 field (no separators, no segment breaks)."""
    return "".join(" " if c in "|^~\\&\r\n" else c for c in text)[:200]


def error_code(reasons: list[str]) -> str:
    """The ERR-3 code that fits the first problem."""
    first = reasons[0] if reasons else ""
    if "missing" in first:
        return ERR_REQUIRED_FIELD_MISSING
    if "policy" in first:
        return ERR_INTERNAL
    return ERR_DATA_TYPE


def build_ack(
    message: str | None, code: str, reasons: list[str] | None = None, *, application: str = "HEALTHSEC"
) -> str:
    """An original-mode ACK (AA/AE/AR) for ``message``; a minimal one when its MSH is unusable.

    The text carries only the reasons (never field values), so no PHI is echoed back.
    """
    reasons = reasons or []
    control_id = stable_id("ack", message or "", code, datetime.now(UTC).isoformat())[4:24]
    text: str | None = None
    if (
        message
        and message.startswith("MSH")
        and "MSH-2 encoding characters missing or invalid" not in reasons
    ):
        try:
            parsed = hl7.parse(message)
            ack = parsed.create_ack(code, message_id=control_id)
            if reasons:
                ack.segment("MSA").assign_field(_clean("; ".join(reasons)), 3)
            text = str(ack).rstrip("\r")
        except Exception:  # python-hl7 cannot rebuild from a broken MSH: fall through to a minimal ACK
            text = None
    if text is None:
        ts = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        ref = _control_id_of(message) if message else ""
        text = (
            f"MSH|^~\\&|{application}||||{ts}||ACK|{control_id}|P|2.5.1\r"
            f"MSA|{code}|{_clean(ref)}|{_clean('; '.join(reasons))}"
        )
    if reasons and code != "AA":
        text += f"\rERR|||{error_code(reasons)}|E||||{_clean('; '.join(reasons))}"
    return text


def _control_id_of(message: str) -> str:
    """MSH-10 from raw text when the message is too broken for python-hl7."""
    if not message.startswith("MSH") or len(message) < 4:
        return ""
    parts = message.split("\r", 1)[0].split(message[3])
    return parts[9] if len(parts) > 9 else ""


def ack_code_of(ack_text: str) -> str | None:
    """MSA-1 of an acknowledgement, or None when there is no MSA segment."""
    for seg in ack_text.replace("\n", "\r").split("\r"):
        if seg.startswith("MSA") and len(seg) > 4:
            return seg.split(seg[3])[1].strip() or None
    return None
