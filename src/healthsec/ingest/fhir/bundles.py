"""Load patients, practitioners, encounters and care teams from FHIR bundles or bulk NDJSON."""

from __future__ import annotations

import gzip
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from healthsec.model import ParseError
from healthsec.model.care import CareContext, normalise_surname

SOURCE = "fhir-directory"
NEEDED = ("Patient", "Practitioner", "PractitionerRole", "Encounter", "CareTeam")
NPI = "http://hl7.org/fhir/sid/us-npi"


@dataclass
class Directory:
    """What the loader found: the context, plus counts and the records it could not use."""

    context: CareContext
    patients: list[str] = field(default_factory=list)
    practitioners: list[str] = field(default_factory=list)
    encounters: int = 0
    care_teams: int = 0
    errors: list[ParseError] = field(default_factory=list)


def _files(paths: Sequence[str | Path]) -> Iterator[Path]:
    for p in map(Path, paths):
        if p.is_dir():
            for child in sorted(p.iterdir()):
                if child.name.endswith((".ndjson", ".ndjson.gz", ".json", ".json.gz")):
                    yield child
        else:
            yield p


def _wanted(path: Path) -> bool:
    """Bulk-export files are named by resource type: skip the ones that cannot hold what we need."""
    stem = path.name.split(".", 1)[0]
    return not stem[:1].isupper() or stem in NEEDED or stem == "Bundle"


def _resources(path: Path, errors: list[ParseError]) -> Iterator[Mapping[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        errors.append(ParseError(SOURCE, str(path), f"cannot read: {exc}"))
        return
    ndjson = ".ndjson" in path.name
    chunks = data.splitlines() if ndjson else [data]
    for lineno, chunk in enumerate(chunks, start=1):
        if not chunk.strip():
            continue
        try:
            obj = orjson.loads(chunk)
        except orjson.JSONDecodeError as exc:
            errors.append(ParseError(SOURCE, str(path), f"not JSON ({exc.msg})", lineno if ndjson else None))
            continue
        if isinstance(obj, Mapping) and obj.get("resourceType") == "Bundle":
            entries = obj.get("entry") or []
            if not isinstance(entries, list):
                where = lineno if ndjson else None
                errors.append(ParseError(SOURCE, str(path), "Bundle: 'entry' is not a list", where))
                continue
            for entry in entries:
                res = entry.get("resource") if isinstance(entry, Mapping) else None
                if isinstance(res, Mapping):
                    yield res
        elif isinstance(obj, Mapping):
            yield obj


class _Shapes:
    """Reads a resource's list fields as lists of objects; a field of another shape (a number, a string,
    items that are not objects: what a hostile or broken export holds) is one ParseError naming the
    resource and the field, and the well-formed items are still used."""

    def __init__(self, path: Path, errors: list[ParseError]) -> None:
        self.path, self.errors = path, errors

    def objects(self, res: Mapping[str, Any], key: str, value: Any = None) -> list[Mapping[str, Any]]:
        value = res.get(key) if value is None else value
        if value is None:
            return []
        items = value if isinstance(value, list) else []
        good = [v for v in items if isinstance(v, Mapping)]
        if len(good) != len(items) or not isinstance(value, list):
            name = f"{res.get('resourceType')}/{str(res.get('id') or '?')[:64]}"
            why = "is not a list" if not isinstance(value, list) else "holds items that are not objects"
            self.errors.append(ParseError(SOURCE, str(self.path), f"{name}: '{key}' {why}"))
        return good


def _family(resource: Mapping[str, Any], shapes: _Shapes) -> str | None:
    for name in shapes.objects(resource, "name"):
        if name.get("family"):
            return normalise_surname(str(name["family"]))
    return None


# Security labels that mark a record as needing extra protection: v3 confidentiality R (restricted) and
# V (very restricted), and the v3 ActCode sensitivity policies for celebrities, employees and "VIP".
_RESTRICTED = {"R", "V", "CELEB", "EMPL", "VIP", "TBOO"}


def _restricted(resource: Mapping[str, Any], shapes: _Shapes) -> bool:
    meta = resource.get("meta")
    labels = meta.get("security") if isinstance(meta, Mapping) else None
    codes = shapes.objects(resource, "meta.security", labels)
    return any(str(c.get("code", "")).upper() in _RESTRICTED for c in codes)


def _ref(value: Any) -> str | None:
    """A reference as ``Type/id`` or ``Type?identifier=system|value`` (Synthea's conditional references)."""
    if not isinstance(value, Mapping):
        return None
    if value.get("reference"):
        return str(value["reference"])
    ident = value.get("identifier")
    if isinstance(ident, Mapping) and ident.get("value"):
        return f"{ident.get('system', '')}|{ident['value']}"
    return None


def _canonical(ref: str | None, npi_to_id: Mapping[str, str]) -> str | None:
    if ref is None:
        return None
    if ref.startswith("Practitioner?identifier="):
        ref = ref.split("=", 1)[1]
    if "|" in ref:
        return npi_to_id.get(ref, ref)
    return ref


def load_directory(paths: Sequence[str | Path]) -> Directory:
    """Read Patient, Practitioner(Role), Encounter and CareTeam resources from files or directories.

    A practitioner has a care relationship with a patient when they participate in one of the patient's
    encounters or are a member of one of the patient's care teams. Patients whose ``meta.security`` carries
    a restricted / very-restricted confidentiality or a celebrity / employee / VIP label are VIPs.
    """
    errors: list[ParseError] = []
    patients: dict[str, str | None] = {}
    pract_family: dict[str, str | None] = {}
    npi_to_id: dict[str, str] = {}
    role_by_npi: dict[str, str] = {}
    links: list[tuple[str, str]] = []  # (raw practitioner ref, patient id)
    encounters = care_teams = 0
    vips: set[str] = set()
    for path in _files(paths):
        if not _wanted(path):
            continue
        shapes = _Shapes(path, errors)
        for res in _resources(path, errors):
            rtype = res.get("resourceType")
            rid = str(res.get("id") or "")
            if rtype == "Patient" and rid:
                patients[rid] = _family(res, shapes)
                if _restricted(res, shapes):
                    vips.add(rid)
            elif rtype == "Practitioner" and rid:
                pract_family[f"Practitioner/{rid}"] = _family(res, shapes)
                for ident in shapes.objects(res, "identifier"):
                    if ident.get("value"):
                        npi_to_id[f"{ident.get('system', '')}|{ident['value']}"] = f"Practitioner/{rid}"
            elif rtype == "PractitionerRole":
                who = _ref(res.get("practitioner"))
                for concept in shapes.objects(res, "code"):
                    codings = shapes.objects(res, "code.coding", concept.get("coding"))
                    label = concept.get("text") or (codings[0].get("display") if codings else None)
                    if who and label:
                        role_by_npi[who] = str(label)
                        break
            elif rtype in ("Encounter", "CareTeam"):
                _, _, pid = str(_ref(res.get("subject")) or "").rpartition("Patient/")
                if not pid:
                    continue
                if rtype == "Encounter":
                    encounters += 1
                    people = [_ref(p.get("individual")) for p in shapes.objects(res, "participant")]
                else:
                    care_teams += 1
                    people = [_ref(p.get("member")) for p in shapes.objects(res, "participant")]
                links += [(who, pid) for who in people if who]
    care: dict[str, set[str]] = defaultdict(set)
    for who, pid in links:
        user = _canonical(who, npi_to_id)
        if user:
            care[user].add(pid)
    roles: dict[str, str] = {}
    for who, label in role_by_npi.items():
        user = _canonical(who, npi_to_id)
        if user:
            roles[user] = label
    context = CareContext(
        care={u: frozenset(p) for u, p in care.items()},
        patient_surnames={p: f for p, f in patients.items() if f},
        user_surnames={u: f for u, f in pract_family.items() if f},
        user_roles=roles,
        aliases=dict(npi_to_id),
        vip_patients=frozenset(vips),
    )
    return Directory(
        context=context,
        patients=sorted(patients),
        practitioners=sorted(pract_family),
        encounters=encounters,
        care_teams=care_teams,
        errors=errors,
    )
