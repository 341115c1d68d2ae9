"""The visit of an HL7 v2 ADT message: ward (PV1-3), care providers (PV1-7/8/9/17, ROL), VIP flag (PV1-16).

Read from the raw segment text with the message's own separators, because python-hl7 gives no help with
repeating XCN fields and the real senders (the CDC samples) leave most PV1 fields empty. What comes out
goes into ``ClinicalMessage.fields`` under standard names that any HL7 feed provides, so access analytics
learn care relationships from the hospital's real ADT stream:

- ``location``: PV1-3.1 point of care (the ward or unit), ``None`` when the sender leaves it empty;
- ``patient_class``: PV1-2 (``I`` inpatient, ``O`` outpatient, ``E`` emergency, ...);
- ``care_providers``: ``{"id", "role", "action"}`` per named person: PV1-7 attending, PV1-8 referring,
  PV1-9 consulting, PV1-17 admitting, and each person of a ROL segment (ROL-4) with its ROL-3 role code
  and ROL-2 action (``AD`` add, ``UP`` update, ``DE`` delete, ...). ``id`` is XCN.1, the person's
  identifier at the sender; persons named without an identifier cannot be matched to an account and
  are counted under ``unidentified_providers`` instead;
- ``vip_indicator``: PV1-16 as sent, and ``vip``: ``True`` when it says VIP (HL7 leaves the table to each
  site, so any non-empty value other than an explicit no: ``N``, ``NO``, ``0``).
"""

from __future__ import annotations

from collections.abc import Callable

PV1_PROVIDERS = ((7, "attending"), (8, "referring"), (9, "consulting"), (17, "admitting"))


def _xcn_ids(value: str, comp: str, rep: str) -> tuple[list[tuple[str, str | None]], int]:
    """(identifier, assigning authority) of each repetition of an XCN field, and how many had no id."""
    out: list[tuple[str, str | None]] = []
    missing = 0
    for one in value.split(rep):
        parts = one.split(comp)
        if not any(p.strip() for p in parts):
            continue
        ident = parts[0].strip()
        if not ident:
            missing += 1
            continue
        authority = parts[8].strip() if len(parts) > 8 else ""
        out.append((ident, authority or None))
    return out, missing


def _getter(fields: list[str]) -> Callable[[int], str]:
    return lambda n: fields[n] if len(fields) > n else ""


def visit_fields(lines: list[str], sep: str, enc: str) -> dict[str, object]:
    """The visit fields of one message's segments (``lines``), empty when it has no PV1 or ROL."""
    comp = enc[0] if enc else "^"
    rep = enc[1] if len(enc) > 1 else "~"
    providers: list[dict[str, object]] = []
    unidentified = 0
    out: dict[str, object] = {}
    for line in lines:
        name = line[:3]
        if name == "PV1":
            get = _getter(line.split(sep))
            out["patient_class"] = get(2).split(comp)[0].strip() or None
            out["location"] = get(3).split(comp)[0].strip() or None
            vip = get(16).split(comp)[0].strip()
            if vip:
                out["vip_indicator"] = vip
                out["vip"] = vip.upper() not in ("N", "NO", "0")
            for n, role in PV1_PROVIDERS:
                ids, missing = _xcn_ids(get(n), comp, rep)
                unidentified += missing
                for ident, authority in ids:
                    providers.append({"id": ident, "role": role, "authority": authority, "action": "AD"})
        elif name == "ROL":
            get = _getter(line.split(sep))
            action = get(2).split(comp)[0].strip().upper() or "AD"
            role = get(3).split(comp)[0].strip() or "member"
            ids, missing = _xcn_ids(get(4), comp, rep)
            unidentified += missing
            for ident, authority in ids:
                providers.append({"id": ident, "role": role, "authority": authority, "action": action})
    if providers or "location" in out:
        out["care_providers"] = providers
    if unidentified:
        out["unidentified_providers"] = unidentified
    return out
