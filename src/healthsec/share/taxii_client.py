"""TAXII 2.1 client: pull partners' collections incrementally (remembered cursor), push ours through the door.

Pulling uses httpx directly rather than taxii2-client because the incremental cursor is the
``X-TAXII-Date-Added-Last`` response header, which taxii2-client does not expose; pushing uses
taxii2-client's ``Collection.add_objects``. A partner that is down is recorded on the cursor (error,
time of attempt) and the run carries on with the next partner; the cursor only moves on success.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import orjson

from healthsec.config import env_var
from healthsec.model import parse_utc
from healthsec.privacy.pseudonymise import SharingKeys
from healthsec.share.stix_import import DEFAULT_MAX_BYTES, import_bundle
from healthsec.share.taxii_http import TAXII_MEDIA
from healthsec.share.taxii_server import known_for_sharing, release_page
from healthsec.store import Store
from healthsec.store.sharing import Sharing, taxii_timestamp

PUSH_PREFIX = "push:"


@dataclass(frozen=True)
class SyncResult:
    """One pull or push with one partner: how many objects moved, or why it failed."""

    partner: str
    direction: str
    objects: int = 0
    added: int = 0
    duplicates: int = 0
    rejected: int = 0
    error: str | None = None
    cursor: str | None = None


def secret_env_var(partner: str) -> str:
    """Where the secret for a partner's server is read from: ``HEALTHSEC_TAXII_SECRET_<PARTNER>``."""
    return "HEALTHSEC_TAXII_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", partner).upper()


def partner_secret(partner: str, environ: Mapping[str, str] | None = None) -> str | None:
    if environ is not None:
        return environ.get(secret_env_var(partner)) or None
    return env_var(secret_env_var(partner)) or None


def _collection_url(partner: Mapping[str, Any], collection: str | None) -> str:
    url = str(partner.get("url") or "")
    if not url or not collection:
        raise ValueError(f"partner {partner['name']!r} has no TAXII API root URL or collection configured")
    return url.rstrip("/") + f"/collections/{collection}/"


def _reason(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from {exc.request.url.host}"
    if isinstance(exc, httpx.TransportError):
        return f"partner unreachable: {type(exc).__name__}"
    return str(exc) or type(exc).__name__


def pull(
    sharing: Sharing,
    partner_name: str,
    *,
    secret: str | None,
    into: str = "inbox",
    page_size: int = 500,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> SyncResult:
    """Fetch what the partner added since our cursor, page by page; each page is checked and stored whole."""
    partner = sharing.partners.get(partner_name)
    if partner is None:
        return SyncResult(partner_name, "pull", error="unknown partner")
    coll = str(partner.get("remote_collection") or "")
    cursor_row = sharing.cursors.get(partner_name, coll)
    cursor = cursor_row["added_after"] if cursor_row else None
    total = added = dups = rejected = 0
    try:
        url = _collection_url(partner, coll) + "objects/"
        auth = (str(partner.get("remote_user") or partner_name), secret) if secret else None
        with httpx.Client(timeout=timeout, transport=transport) as client:
            nxt: str | None = None
            while True:
                params: dict[str, Any] = {"limit": page_size}
                if cursor:
                    params["added_after"] = cursor
                if nxt:
                    params["next"] = nxt
                resp = client.get(url, params=params, headers={"Accept": TAXII_MEDIA}, auth=auth)
                resp.raise_for_status()
                envelope = orjson.loads(resp.content)
                objects = envelope.get("objects") or []
                if objects:
                    raw = orjson.dumps(
                        {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}
                    )
                    res = import_bundle(
                        raw, sharing, collection=into, source=partner_name, max_bytes=DEFAULT_MAX_BYTES
                    )
                    total += len(objects)
                    added += res.added
                    dups += res.duplicates
                    rejected += 0 if res.ok else len(objects)
                if not envelope.get("more") or not envelope.get("next"):
                    last = resp.headers.get("X-TAXII-Date-Added-Last")
                    cursor = last or cursor
                    break
                nxt = str(envelope["next"])
    except (httpx.HTTPError, ValueError, orjson.JSONDecodeError) as exc:
        sharing.cursors.record(partner_name, coll, added_after=None, pulled=0, error=_reason(exc))
        return SyncResult(partner_name, "pull", total, added, dups, rejected, error=_reason(exc))
    sharing.cursors.record(partner_name, coll, added_after=cursor, pulled=added, error=None)
    return SyncResult(partner_name, "pull", total, added, dups, rejected, cursor=cursor)


def push(
    sharing: Sharing,
    partner_name: str,
    *,
    secret: str | None,
    keys: SharingKeys,
    collection: str = "ours",
    batch: int = 500,
    timeout: float = 10.0,
    known: Mapping[str, Iterable[str]] | None = None,
) -> SyncResult:
    """Send objects added to our collection since the last push, cleared by ``outbound`` for this partner.

    ``known`` are the internal identifiers to tokenise (default: ``known_for_sharing`` of our store, the
    same set the TAXII server uses), so names that appear only in prose do not leave either.
    """
    from taxii2client.v21 import Collection

    partner = sharing.partners.get(partner_name)
    if partner is None:
        return SyncResult(partner_name, "push", error="unknown partner")
    ours = sharing.collections.get(collection)
    if ours is None:
        return SyncResult(partner_name, "push", error=f"no local collection {collection!r}")
    target = str(partner.get("push_collection") or partner.get("remote_collection") or "")
    key = PUSH_PREFIX + str(ours["id"])
    row = sharing.cursors.get(partner_name, key)
    since: datetime | None = None
    if row and row["added_after"]:
        since = parse_utc(row["added_after"])
    sent = 0
    last: str | None = row["added_after"] if row else None
    try:
        remote = Collection(
            _collection_url(partner, target),
            user=str(partner.get("remote_user") or partner_name),
            password=secret,
        )
        after: int | None = None
        while True:
            page = sharing.objects.page(
                ours["id"], added_after=since, after_seq=after, limit=batch, versions="all"
            )
            if not page.items:
                break
            if known is None:
                known = known_for_sharing(Store(sharing.engine, sharing.org))

            def context(ids: set[str]) -> list[dict[str, Any]]:
                found = sharing.objects.page(ours["id"], ids=sorted(ids), limit=len(ids)).items
                return [orjson.loads(it.body) for it in found]

            # the same door as the TAXII server: a batch is judged with the objects it refers to
            released = [obj for _, obj in release_page(page.items, partner, keys, context, known=known)]
            if released:
                status = remote.add_objects({"objects": released}, wait_for_completion=True, timeout=timeout)
                if status.failure_count:
                    first = (status.failures or [{}])[0]
                    raise ValueError(
                        f"partner refused {status.failure_count} objects: {first.get('message')}"
                    )
                sent += len(released)
            after = page.items[-1].seq
            last = taxii_timestamp(page.items[-1].date_added)
            if not page.more:
                break
    except Exception as exc:  # taxii2-client raises requests' and its own errors; all mean "try again later"
        sharing.cursors.record(partner_name, key, added_after=None, pulled=0, error=_reason(exc))
        return SyncResult(partner_name, "push", sent, error=_reason(exc))
    sharing.cursors.record(partner_name, key, added_after=last, pulled=sent, error=None)
    return SyncResult(partner_name, "push", sent, cursor=last)


def pull_all(
    sharing: Sharing, secrets: Mapping[str, str | None] | None = None, *, names: Iterable[str] | None = None
) -> list[SyncResult]:
    """Pull every partner that has a server URL (or those named); one partner down does not stop the rest."""
    wanted = set(names) if names is not None else None
    out = []
    for p in sharing.partners.list():
        if not p.get("url") or (wanted is not None and p["name"] not in wanted):
            continue
        secret = (secrets or {}).get(p["name"]) if secrets is not None else partner_secret(p["name"])
        out.append(pull(sharing, p["name"], secret=secret))
    return out
