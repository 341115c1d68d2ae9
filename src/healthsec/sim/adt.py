"""Real HL7 v2.5.1 ADT messages for the simulated hospital, read back through the product's HL7 parser.

The simulator writes the wire text an ADT system sends (MSH, EVN, PID, PV1 with the attending and
consulting doctors, ROL segments for the nurses) and turns it into an event with
:func:`healthsec.ingest.hl7.parse.message_event`, exactly as the MLLP listener does. So detectors see
only what a hospital's real ADT feed gives them, never fields that exist only in the simulator.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from healthsec.ingest.hl7.parse import message_event
from healthsec.model import ClinicalMessage
from healthsec.sim.hospital import Hospital, Patient

EVENTS = {"A01": "ADT_A01", "A02": "ADT_A02", "A03": "ADT_A03", "A08": "ADT_A01"}  # A08 uses A01's structure


def _ts(t: datetime) -> str:
    return t.strftime("%Y%m%d%H%M%S")


def adt_text(
    trigger: str,
    t: datetime,
    *,
    control_id: str,
    patient_id: str,
    surname: str,
    ward: str | None,
    attending: str | None = None,
    consulting: Sequence[str] = (),
    nurses: Iterable[str] = (),
    removed: Iterable[str] = (),
    vip: bool = False,
    facility: str = "HOSP",
) -> str:
    """One ADT message: ``trigger`` is A01 (admit), A02 (transfer), A03 (discharge) or A08 (update)."""
    if trigger not in EVENTS:
        raise ValueError(f"unsupported ADT trigger {trigger!r}; known: {sorted(EVENTS)}")
    ward_field = f"{ward.upper()}^^^{facility}" if ward else ""
    pv1 = [""] * 20
    pv1[0], pv1[1], pv1[2], pv1[3] = "PV1", "1", "I", ward_field
    pv1[7] = f"{attending}^^^^^^^^{facility}" if attending else ""
    pv1[9] = "~".join(f"{c}^^^^^^^^{facility}" for c in consulting)
    pv1[16] = "VIP" if vip else ""
    segments = [
        f"MSH|^~\\&|ADT_SYS|{facility}|EHR|{facility}|{_ts(t)}||ADT^{trigger}^{EVENTS[trigger]}|"
        f"{control_id}|P|2.5.1",
        f"EVN|{trigger}|{_ts(t)}",
        f"PID|1||{patient_id}^^^{facility}^MR||{surname.upper()}^PAT",
        "|".join(pv1),
    ]
    for i, n in enumerate(nurses, start=1):
        segments.append(f"ROL|{control_id}-{i}|AD|NUR^Nurse^L|{n}^^^^^^^^{facility}")
    for i, n in enumerate(removed, start=1):
        segments.append(f"ROL|{control_id}-d{i}|DE|NUR^Nurse^L|{n}^^^^^^^^{facility}")
    return "\r".join(segments)


def hl7_event(
    text: str, *, event_id: str, t: datetime, src_ip: str, dst_ip: str, locator: str, record: int
) -> ClinicalMessage:
    """The event the product's HL7 parser makes of ``text`` (received by MLLP at ``t``), under the
    simulator's stable id."""
    ev = message_event(
        text, source="sim.hl7", locator=locator, record=record, received=t, src_ip=src_ip, dst_ip=dst_ip
    )
    return replace(ev, id=event_id)


def care_visit(h: Hospital, p: Patient) -> dict[str, Any]:
    """PV1/ROL content of a patient's visit: the first doctor of the care team attends, other doctors
    consult, nurses are ROL members."""
    roles = {s.user: s.role for s in h.staff}
    doctors = [u for u in p.care_team if roles.get(u) == "physician"]
    nurses = [u for u in p.care_team if roles.get(u) != "physician"]
    return {
        "ward": p.ward,
        "attending": doctors[0] if doctors else None,
        "consulting": doctors[1:],
        "nurses": nurses,
        "vip": p.vip,
    }
