"""Internal identifiers the exit door must replace, gathered from the store (inventory, alerts, incidents)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from healthsec.share.outbound import known_identifiers

if TYPE_CHECKING:
    from healthsec.store import Store


def known_from_store(store: Store, *, incident_limit: int = 10_000) -> dict[str, set[str]]:
    """Host names, users, patients, devices and AE titles this organisation knows about, by token kind.

    Pass the result as ``known=`` to :func:`healthsec.share.outbound.outbound` wherever objects leave
    (export, TAXII responses, push): host names that appear only in prose are caught this way.
    """
    incidents = store.incidents.list(limit=incident_limit)
    alerts = [a for i in incidents for aid in i.alert_ids if (a := store.alerts.get(aid)) is not None]
    known = known_identifiers(incidents, alerts)
    for asset in store.assets.list():
        if asset.name:
            known.setdefault("host", set()).add(asset.name)
    return known


class KnownCache:
    """``known_from_store`` recomputed at most every ``ttl`` seconds, for servers answering many requests."""

    def __init__(
        self,
        store_factory: Callable[[], Store],
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = store_factory
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._value: dict[str, set[str]] | None = None
        self._at = 0.0

    def get(self) -> dict[str, set[str]]:
        with self._lock:
            now = self._clock()
            if self._value is None or now - self._at >= self._ttl:
                self._value = known_from_store(self._factory())
                self._at = now
            return self._value
