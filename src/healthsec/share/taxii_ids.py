"""The ids a TAXII reader sees: deterministic per partner and collection, and found again by that id.

The exit door re-keys an object's id with a keyed hash of (partner, collection, id)
(``outbound.rekeyed_id``), so one reader always sees the same id for the same object and two readers
cannot join their copies; objects a partner sent us keep the id it gave them. A request naming an id is
answered by the stored objects that *leave under* that id for this reader: the server maps the id back
through the hashes of the collection's ids (rebuilt at most every ``refresh`` seconds) and through the
ids it has served to this reader; a stored id that would leave under another id is not found by its raw
value, so nobody learns the mapping by asking.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence

from healthsec.share.outbound import rekeyed_id
from healthsec.store.sharing import Sharing


def reader_scope(partner: str, collection_id: str) -> str:
    """The scope of one reader's view of one collection (part of every re-keyed id it sees)."""
    return f"{partner}\x1f{collection_id}"


class ReaderIds:
    """Served id -> stored id per (partner, collection), bounded and refreshed on demand."""

    def __init__(self, id_key: bytes, refresh: float = 5.0, max_views: int = 1000) -> None:
        self._key = id_key
        self.refresh = refresh
        self.max_views = max_views
        self._views: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}
        self._lock = threading.Lock()

    def _view(self, sharing: Sharing, partner: str, cid: str, need: Sequence[str]) -> dict[str, str]:
        key = (partner, cid)
        now = time.monotonic()
        with self._lock:
            built, mapping = self._views.get(key, (-1e18, {}))
        if all(w in mapping for w in need) or now - built < self.refresh:
            return mapping
        scope = reader_scope(partner, cid)
        fresh = {rekeyed_id(self._key, oid, scope): oid for oid in sharing.objects.ids(cid)}
        with self._lock:
            old = self._views.get(key, (0.0, {}))[1]
            merged = old | fresh  # keep the served SCO ids recorded by `served`
            if len(self._views) >= self.max_views:
                self._views.clear()
            self._views[key] = (now, merged)
        return merged

    def served(self, partner: str, cid: str, pairs: Iterable[tuple[str, str]]) -> None:
        """Record (served id, stored id) pairs the door produced (covers SCO ids made from values)."""
        with self._lock:
            view = self._views.get((partner, cid))
            if view is None:
                view = self._views[(partner, cid)] = (-1e18, {})
            view[1].update((out, stored) for out, stored in pairs if out != stored)  # in place: no copy

    def stored_ids(self, sharing: Sharing, partner: str, cid: str, wanted: Sequence[str]) -> tuple[str, ...]:
        """Stored ids that may leave under one of ``wanted`` (callers keep only what does)."""
        mapping = self._view(sharing, partner, cid, wanted)
        out = set(wanted) | {mapping[w] for w in wanted if w in mapping}
        return tuple(sorted(out))
