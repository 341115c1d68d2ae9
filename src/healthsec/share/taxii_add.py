"""TAXII 2.1 Add Objects (section 4.4): each object of an envelope is checked alone; bad ones fail alone.

An envelope that is not JSON or has no ``objects`` list is refused whole (400). Otherwise every object is
normalised (upper-case UUID hex read as the same id) and checked by ``stix_import.check_object``; an
object that fails is reported under the status resource's ``failures`` with the reason and kept in
quarantine, and the others are stored in one transaction and reported under ``successes``.
"""

from __future__ import annotations

from typing import Any

import orjson

from healthsec.share.stix_import import BundleRejected, check_object, normalise_ids
from healthsec.share.taxii_http import TaxiiError
from healthsec.store.sharing import Sharing, version_key


def _version(obj: Any) -> str:
    if not isinstance(obj, dict):
        return ""
    value = obj.get("modified") or obj.get("created") or ""
    return value if isinstance(value, str) else ""


def _label(n: int, obj: Any) -> str:
    oid = obj.get("id") if isinstance(obj, dict) else None
    return oid[:200] if isinstance(oid, str) else f"object {n}"


def add_envelope(
    sharing: Sharing, cid: str, raw: bytes, submitter: str, allow_custom: frozenset[str]
) -> dict[str, Any]:
    """Store the good objects of a TAXII envelope and return the status resource (all outcomes)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        sharing.quarantine.add(raw, f"malformed JSON: {exc}", source=submitter)
        raise TaxiiError(400, "Bad Request", f"malformed JSON: {exc}") from None
    objects = doc.get("objects") if isinstance(doc, dict) else None
    if not isinstance(objects, list):
        sharing.quarantine.add(raw, "not a TAXII envelope", source=submitter)
        raise TaxiiError(400, "Bad Request", "body must be a TAXII envelope with an 'objects' list")
    good: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    for n, original in enumerate(objects, start=1):
        obj = normalise_ids(original)
        try:
            check_object(n, obj, allow_custom)
        except BundleRejected as exc:
            failures.append({"id": _label(n, obj), "version": _version(obj), "message": exc.reason})
            sharing.quarantine.add(orjson.dumps(original), exc.reason, source=submitter)
            continue
        good.append(obj)
    # report each stored version as the sender wrote it (the store keys versions by their time)
    written = {(str(o["id"]), version_key(_version(o))): _version(o) for o in good}
    with sharing.engine.begin() as conn:
        res = sharing.objects.add_many(cid, good, source=submitter, conn=conn) if good else None
        pairs = (res.added + res.duplicates) if res is not None else []
        ok = [{"id": i, "version": written.get((i, v), v)} for i, v in pairs]
        return sharing.status.create(cid, successes=ok, failures=failures, conn=conn, submitter=submitter)
