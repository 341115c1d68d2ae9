"""Guarded import of partner STIX 2.1 bundles: checked whole, stored whole in one transaction, or quarantined.

Parsing is orjson plus hand-written structural checks rather than ``stix2.parse``: the library manages a
few thousand objects per second and would make a large partner feed the bottleneck; the checks here are
the ones that decide acceptance (size, JSON, bundle shape, STIX 2.1 only, id/type agreement, timestamps,
known types). Nothing in a bundle is ever executed: patterns are stored as text, never evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from healthsec.model.common import TIMESTAMP_RE, parse_timestamp
from healthsec.share.stix_ids import ID_RE, normalise_id
from healthsec.store.sharing import Sharing

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_OBJECTS = 200_000

SDO_TYPES = frozenset(
    {
        "attack-pattern",
        "campaign",
        "course-of-action",
        "grouping",
        "identity",
        "incident",
        "indicator",
        "infrastructure",
        "intrusion-set",
        "location",
        "malware",
        "malware-analysis",
        "note",
        "observed-data",
        "opinion",
        "report",
        "threat-actor",
        "tool",
        "vulnerability",
    }
)
SRO_TYPES = frozenset({"relationship", "sighting"})
SCO_TYPES = frozenset(
    {
        "artifact",
        "autonomous-system",
        "directory",
        "domain-name",
        "email-addr",
        "email-message",
        "file",
        "ipv4-addr",
        "ipv6-addr",
        "mac-addr",
        "mutex",
        "network-traffic",
        "process",
        "software",
        "url",
        "user-account",
        "windows-registry-key",
        "x509-certificate",
    }
)
META_TYPES = frozenset({"marking-definition", "language-content", "extension-definition"})
KNOWN_TYPES = SDO_TYPES | SRO_TYPES | SCO_TYPES | META_TYPES


class BundleRejected(ValueError):
    """A partner bundle refused as a whole; ``reason`` says why and names the offending object."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ImportResult:
    """What an import did: objects stored, versions already known, or the rejection and its quarantine id."""

    bundle_id: str | None
    added: int = 0
    duplicates: int = 0
    rejected: str | None = None
    quarantine_id: str | None = None
    by_type: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.rejected is None


def normalise_ids(obj: Any) -> Any:
    """The object with its ``id`` and every ``*_ref``/``*_refs`` identifier's UUID in lower case.

    RFC 4122 reads UUID hex case-insensitively, so an id written in upper case (as in the OASIS example
    ``infrastructure.json``) is the same identifier: it is normalised, not refused."""
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    for key, value in obj.items():
        if isinstance(value, str) and (key == "id" or key.endswith("_ref")):
            out[key] = normalise_id(value)
        elif key.endswith("_refs") and isinstance(value, list):
            out[key] = [normalise_id(v) if isinstance(v, str) else v for v in value]
    return out


def check_object(n: int, obj: Any, allow_custom: frozenset[str]) -> None:
    where = f"object {n}"
    if not isinstance(obj, dict):
        raise BundleRejected(f"{where}: not a JSON object")
    otype, oid = obj.get("type"), obj.get("id")
    if not isinstance(otype, str) or not isinstance(oid, str):
        raise BundleRejected(f"{where}: missing 'type' or 'id'")
    where = f"object {n} ({oid[:100]})"
    m = ID_RE.match(oid)
    if m is None or m.group(1) != otype:
        raise BundleRejected(f"{where}: id does not have the form '{otype}--<uuid>'")
    if otype not in KNOWN_TYPES and otype not in allow_custom:
        raise BundleRejected(f"{where}: unknown custom object type {otype!r}")
    spec = obj.get("spec_version")
    if otype in SCO_TYPES:
        if spec is not None and spec != "2.1":
            raise BundleRejected(f"{where}: spec_version {spec!r}, only STIX 2.1 is accepted")
        return
    if spec != "2.1":
        raise BundleRejected(f"{where}: spec_version {spec!r}, only STIX 2.1 is accepted")
    times = {}
    for key in ("created", "modified"):
        value = obj.get(key)
        if value is None and (key == "created" or otype != "marking-definition"):
            raise BundleRejected(f"{where}: missing '{key}'")
        if value is not None and (not isinstance(value, str) or not TIMESTAMP_RE.match(value)):
            raise BundleRejected(f"{where}: '{key}' is not a STIX timestamp")
        if value is not None:
            try:  # the shape alone lets 2026-13-45T99:99:99Z through; a stored version must be a time
                times[key] = parse_timestamp(value)
            except ValueError as exc:
                raise BundleRejected(f"{where}: '{key}' {exc}") from None
    if "created" in times and "modified" in times and times["modified"] < times["created"]:
        raise BundleRejected(f"{where}: 'modified' is earlier than 'created'")
    if otype == "indicator" and not isinstance(obj.get("pattern"), str):
        raise BundleRejected(f"{where}: indicator without a pattern")
    confidence = obj.get("confidence")
    if confidence is not None and (
        isinstance(confidence, bool) or not isinstance(confidence, int) or not 0 <= confidence <= 100
    ):
        raise BundleRejected(f"{where}: confidence must be an integer 0..100")


def parse_bundle(
    raw: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_objects: int = DEFAULT_MAX_OBJECTS,
    allow_custom: Iterable[str] = (),
) -> tuple[str, list[dict[str, Any]]]:
    """Check a partner bundle whole and return (bundle id, objects); raise BundleRejected with a reason."""
    if len(raw) > max_bytes:
        raise BundleRejected(f"oversized: {len(raw)} bytes is more than the limit of {max_bytes}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BundleRejected(f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "bundle":
        raise BundleRejected("not a STIX bundle (top level must be an object with type 'bundle')")
    bid = doc.get("id")
    if not isinstance(bid, str) or not (m := ID_RE.match(bid)) or m.group(1) != "bundle":
        raise BundleRejected("bundle id is missing or not of the form 'bundle--<uuid>'")
    if "spec_version" in doc:
        raise BundleRejected(
            f"STIX {doc['spec_version']} bundle (spec_version on the bundle); only 2.1 is accepted"
        )
    objects = doc.get("objects", [])
    if not isinstance(objects, list):
        raise BundleRejected("bundle 'objects' is not a list")
    if len(objects) > max_objects:
        raise BundleRejected(f"oversized: {len(objects)} objects is more than the limit of {max_objects}")
    custom = frozenset(allow_custom)
    objects = [normalise_ids(o) for o in objects]
    for n, obj in enumerate(objects, start=1):
        check_object(n, obj, custom)
    return bid, objects


def count_types(objects: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for obj in objects:
        out[str(obj["type"])] = out.get(str(obj["type"]), 0) + 1
    return out


def import_bundle(
    raw: bytes,
    sharing: Sharing,
    *,
    collection: str = "inbox",
    source: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_objects: int = DEFAULT_MAX_OBJECTS,
    allow_custom: Iterable[str] = (),
    on_reports: Callable[[list[dict[str, Any]], list[dict[str, Any]]], object] | None = None,
) -> ImportResult:
    """Check a partner bundle and store all of it in one transaction, or quarantine it with the reason.

    Versions already held (same id and ``modified``) are skipped; the partner's ``created_by_ref`` and
    ``confidence`` stay in each object and ``source`` records who sent it. ``on_reports`` is called
    with the bundle's ``report`` objects (and all its objects) once they are stored, e.g. to raise
    local incidents that share their ATT&CK techniques (``healthsec.services.intel``).
    """
    try:
        bid, objects = parse_bundle(
            raw, max_bytes=max_bytes, max_objects=max_objects, allow_custom=allow_custom
        )
    except BundleRejected as exc:
        qid = sharing.quarantine.add(raw, exc.reason, source=source)
        return ImportResult(bundle_id=None, rejected=exc.reason, quarantine_id=qid)
    coll = sharing.collections.get(collection) or sharing.collections.create(
        "Received from partners" if collection == "inbox" else collection, alias=collection
    )
    res = sharing.objects.add_many(coll["id"], objects, source=source)
    reports = [o for o in objects if o.get("type") == "report"]
    if on_reports is not None and reports:
        on_reports(reports, objects)
    return ImportResult(
        bundle_id=bid, added=len(res.added), duplicates=len(res.duplicates), by_type=count_types(objects)
    )
