"""Identifiers from the store for the exit door, and their cache for servers."""

from __future__ import annotations

from pathlib import Path

from healthsec.model import Asset, Criticality
from healthsec.share.known import KnownCache, known_from_store
from healthsec.share.stix_sample import sample_alerts, sample_incident
from healthsec.store import Store


def _store(tmp_path: Path) -> Store:
    store = Store.open(str(tmp_path / "k.db"), "local")
    alerts = sample_alerts(2)
    store.alerts.add_many(alerts)
    store.incidents.upsert_many([sample_incident(alerts)])
    store.assets.upsert_many(
        [
            Asset(
                id="a1",
                name="pacs-01",
                role="pacs",
                zone="clinical",
                ip="10.30.0.10",
                criticality=Criticality.CLINICAL_SUPPORT,
            )
        ]
    )
    return store


def test_known_from_store(tmp_path: Path) -> None:
    store = _store(tmp_path)
    known = known_from_store(store)
    store.close()
    assert known["host"] == {"pacs-01"}
    assert known["user"] == {"dr.jones"}
    assert known["patient"] == {"MRN-0042-SECRET"}
    assert "10.20.0.5" in known["ip"]


def test_cache_recomputes_only_after_ttl(tmp_path: Path) -> None:
    store = _store(tmp_path)
    calls = []
    now = [0.0]

    def factory() -> Store:
        calls.append(1)
        return store

    cache = KnownCache(factory, ttl=60, clock=lambda: now[0])
    first = cache.get()
    now[0] = 59.0
    assert cache.get() is first
    assert len(calls) == 1
    now[0] = 61.0
    cache.get()
    assert len(calls) == 2
    store.close()
