"""PHI scrubbing for free text, HL7 v2 segments and FHIR/JSON-shaped content before anything is shared.

Hand-written patterns rather than an NER model (e.g. Presidio + spaCy): hospitals run air-gapped, model
weights cannot be fetched here, and a deterministic scrubber is auditable. It errs on the side of removal:
labelled values (``MRN:``, ``DOB:``, ``Patient:``), titled names, emails, phones, national ids, street
addresses and postcodes, whole PID/NK1/GT1/IN1 segments and FHIR Patient resources.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_DATE = (
    rf"(?:\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{2,4}}|\d{{4}}-\d{{2}}-\d{{2}}|\d{{8}}|"
    rf"\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}\.?,?\s+\d{{4}}|{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}})"
)
_NAME_WORD = r"[A-Z][a-zA-Z'\-]+"
_STREET = (
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl|Close|"
    r"Crescent|Terrace|Square|Sq|Highway|Hwy|Parkway|Pkwy|Gardens|Grove|Row|Mews|Straße|Strasse|Weg)"
)

# (label, pattern) in application order: structured and labelled first, generic last.
_RULES: list[tuple[str, re.Pattern[str]]] = [
    # A segment may also be quoted inside other text (a log line, a repr), so any non-word lead-in counts.
    ("HL7", re.compile(r"(?<![A-Za-z0-9])(?P<seg>PID|PD1|NK1|GT1|IN1|IN2|MRG)\|[^\r\n'\"]*")),
    # Starts only at a token boundary and is bounded: unanchored, a long base64 run costs O(n²) (ReDoS).
    (
        "EMAIL",
        re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,255}\.[A-Za-z]{2,24}"),
    ),
    (
        "DOB",
        re.compile(
            rf"(?i:\b(?:DOB|D\.O\.B\.?|date\s+of\s+birth|birth\s*date|born(?:\s+on)?))"
            rf"\s*[:=#]?\s*{_DATE}"
        ),
    ),
    (
        "MRN",
        re.compile(
            r"(?i:\b(?:MRN|medical\s+record\s+(?:number|no\.?|#)|patient\s*(?:id|no\.?|number|#)|"
            r"hospital\s+number|chart\s+(?:number|no\.?)))\s*[:=#]?\s*[A-Za-z0-9][A-Za-z0-9\-/]{2,}"
        ),
    ),
    (
        "NATIONAL-ID",
        re.compile(
            r"(?i:\b(?:SSN|social\s+security(?:\s+number)?|NHS(?:\s+number)?|"
            r"national\s+(?:id|insurance)(?:\s+number)?|NI\s+number|BSN|personnummer|"
            r"passport(?:\s+number)?))"
            r"\s*[:=#]?\s*[A-Za-z0-9][A-Za-z0-9 \-]{4,14}[A-Za-z0-9]"
        ),
    ),
    ("SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("NATIONAL-ID", re.compile(r"\b\d{3} \d{3} \d{4}\b")),  # NHS number layout
    ("NAME", re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?\s+{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}}")),
    (
        "NAME",
        re.compile(
            rf"(?i:\b(?:patient|pt|name|patient\s+name|next\s+of\s+kin|guarantor)\b)\s*[:=]?\s*"
            rf"{_NAME_WORD}(?:,?\s+{_NAME_WORD}){{0,2}}"
        ),
    ),
    ("POSTCODE", re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[A-Z]{2}\b")),
    ("POSTCODE", re.compile(r"\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b")),
    (
        "ADDRESS",
        re.compile(
            rf"\b\d{{1,5}}[A-Za-z]?\s+(?:{_NAME_WORD}\s+){{1,4}}{_STREET}\b\.?"
            rf"(?:,\s*{_NAME_WORD})?"
        ),
    ),
    (
        "PHONE",
        re.compile(
            r"(?<![\w.:/-])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,5}\)\s?|\d{2,5}[\s.-])"
            r"\d{3,4}[\s.-]?\d{3,4}(?![\w.:/-])"
        ),
    ),
    ("FHIR-REF", re.compile(r"\b(?:Patient|RelatedPerson|Person)/[A-Za-z0-9\-.]{1,64}")),
]

#: Keys whose values are PHI wherever they appear (compared lower-case, without ``_`` and ``-``).
PHI_KEYS = frozenset(
    {
        "patientname",
        "given",
        "family",
        "birthdate",
        "dob",
        "dateofbirth",
        "telecom",
        "address",
        "ssn",
        "mrn",
        "phone",
        "phonenumber",
        "email",
        "nationalid",
        "nhsnumber",
        "patientid",
        "medicalrecordnumber",
        "socialsecuritynumber",
        "homeaddress",
        "postcode",
        "zipcode",
        "nextofkin",
        "guarantor",
        "photo",
    }
)
#: FHIR resources that describe a person: only their type survives.
PERSON_RESOURCES = frozenset({"Patient", "RelatedPerson", "Person"})


def _replacement(label: str) -> Callable[[re.Match[str]], str]:
    def repl(match: re.Match[str]) -> str:
        if label == "HL7":
            return f"{match.group('seg')}|[REDACTED-HL7]"
        if label == "FHIR-REF":
            return match.group(0).split("/", 1)[0] + "/[REDACTED]"
        return f"[REDACTED-{label}]"

    return repl


_REPLACERS = [(pattern, _replacement(label)) for label, pattern in _RULES]


def _known_pattern(known: Iterable[str]) -> re.Pattern[str] | None:
    values = sorted({k.strip() for k in known if k and len(k.strip()) >= 3}, key=len, reverse=True)
    if not values:
        return None
    return re.compile("(?<![\\w])(?:" + "|".join(re.escape(v) for v in values) + ")(?![\\w])", re.IGNORECASE)


def _scrub_text(text: str, known: re.Pattern[str] | None) -> str:
    if known is not None:
        text = known.sub("[REDACTED]", text)
    for pattern, repl in _REPLACERS:
        text = pattern.sub(repl, text)
    return text


# HL7 v2 person segments: field number -> the components that identify someone (ids: the id itself, not
# the assigning authority; names: family/given/middle; addresses: street/other/city/zip; phones: number
# parts); they are removed wherever else the message repeats them.
_ID, _NAME, _ADDR, _PHONE, _ONE = (0,), (0, 1, 2), (0, 1, 2, 4), (0, 5, 6), (0,)
_HL7_PERSON_FIELDS: dict[str, dict[int, tuple[int, ...]]] = {
    "PID": {
        2: _ID,
        3: _ID,
        4: _ID,
        5: _NAME,
        6: _NAME,
        7: _ONE,
        9: _NAME,
        11: _ADDR,
        13: _PHONE,
        14: _PHONE,
        19: _ONE,
        20: _ID,
    },
    "NK1": {2: _NAME, 4: _ADDR, 5: _PHONE, 6: _PHONE},
    "GT1": {2: _ID, 3: _NAME, 5: _ADDR, 6: _PHONE, 7: _PHONE, 8: _ONE, 12: _ONE},
    "IN1": {16: _NAME, 18: _ONE, 19: _ADDR},
    "MRG": {1: _ID, 2: _ID, 3: _ID, 4: _ID, 7: _NAME},
}
_HL7_SEGMENT = re.compile(r"(?<![A-Za-z0-9])(PID|NK1|GT1|IN1|MRG)\|[^\r\n'\"]*")


def hl7_person_values(text: str) -> set[str]:
    """Identifying components of PID/NK1/GT1/IN1/MRG segments found in ``text``."""
    found: set[str] = set()
    for match in _HL7_SEGMENT.finditer(text):
        fields = match.group(0).split("|")
        for n, wanted in _HL7_PERSON_FIELDS[match.group(1)].items():
            if n < len(fields):
                for rep in fields[n].split("~"):
                    comps = rep.split("^")
                    found.update(c for i in wanted if i < len(comps) and len(c := comps[i].strip()) >= 3)
    return found


def scrub_text(text: str, known: Iterable[str] = ()) -> str:
    """Remove PHI from free text; ``known`` adds literal values (e.g. a patient's name) to remove as well.

    Values of HL7 person segments in the text are removed wherever else the message repeats them.
    """
    if "|" in text:
        known = [*known, *hl7_person_values(text)]
    return _scrub_text(text, _known_pattern(known))


def _norm_key(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def person_values(obj: Any) -> set[str]:
    """Identifying values held by FHIR person resources anywhere in ``obj`` (names, ids, phones, address,
    birth date, extension strings such as a mother's maiden name), to remove wherever else they appear
    (a clinical note names the patient without any label)."""
    found: set[str] = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            if item.get("resourceType") in PERSON_RESOURCES:
                for name in item.get("name") or ():
                    if isinstance(name, Mapping):
                        found.update(str(g) for g in name.get("given") or ())
                        found.update(str(name[k]) for k in ("family", "text") if name.get(k))
                for key in ("telecom", "identifier"):
                    found.update(
                        str(x["value"])
                        for x in item.get(key) or ()
                        if isinstance(x, Mapping) and x.get("value")
                    )
                for addr in item.get("address") or ():
                    if isinstance(addr, Mapping):
                        found.update(str(line) for line in addr.get("line") or ())
                        found.update(str(addr[k]) for k in ("city", "postalCode", "text") if addr.get(k))
                found.update(
                    str(e["valueString"])
                    for e in item.get("extension") or ()
                    if isinstance(e, Mapping) and e.get("valueString")
                )
                if item.get("birthDate"):
                    found.add(str(item["birthDate"]))
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


def scrub_obj(obj: Any, known: Iterable[str] = ()) -> Any:
    """Recursive scrub of dicts/lists/strings: PHI-named keys redacted, FHIR person resources emptied,
    attachments dropped, and values of any person resource in ``obj`` removed from all other text."""
    return _scrub(obj, _known_pattern([*known, *person_values(obj)]))


# References to a person whose ``display`` is a name even when the reference is not ``Patient/...``.
_PERSON_REF_KEYS = frozenset(
    {
        "subject",
        "patient",
        "beneficiary",
        "individual",
        "author",
        "performer",
        "requester",
        "recorder",
        "asserter",
        "informant",
        "subscriber",
        "policyholder",
    }
)


def _scrub(obj: Any, known: re.Pattern[str] | None, parent: str = "") -> Any:
    if isinstance(obj, str):
        return _scrub_text(obj, known)
    if isinstance(obj, Mapping):
        rtype = obj.get("resourceType")
        if isinstance(rtype, str) and rtype in PERSON_RESOURCES:
            return {"resourceType": rtype, "id": "[REDACTED]"}
        if "contentType" in obj and "data" in obj:  # a FHIR attachment: opaque content never travels
            return {k: ("[REDACTED-ATTACHMENT]" if k == "data" else _scrub(v, known)) for k, v in obj.items()}
        out: dict[Any, Any] = {}
        reference = obj.get("reference")
        refers_to_person = _norm_key(parent) in _PERSON_REF_KEYS or (
            isinstance(reference, str) and reference.split("/", 1)[0] in PERSON_RESOURCES
        )
        for key, value in obj.items():
            nk = _norm_key(str(key))
            if nk in PHI_KEYS or (refers_to_person and nk == "display"):
                out[key] = None if value is None else "[REDACTED]"
            else:
                out[key] = _scrub(value, known, str(key))
        return out
    if isinstance(obj, list | tuple):
        return [_scrub(v, known, parent) for v in obj]
    return obj
