"""The store conformance kit passes on SQLite and PostgreSQL, and catches a store that breaks the contract."""

from __future__ import annotations

import pytest

from healthsec.store import Store
from healthsec.testing.kits import ConformanceError, check_store


def test_both_backends_pass_the_store_kit(store: Store) -> None:
    check_store(store)


def test_the_kit_rejects_a_store_whose_events_are_not_idempotent(store: Store) -> None:
    class Duplicating:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

        def add_many(self, items: object, bodies: object = None) -> int:
            n = self.inner.add_many(items, bodies)  # type: ignore[attr-defined]
            return n or 8  # claims the second write was new again

    store.events = Duplicating(store.events)  # type: ignore[assignment]
    with pytest.raises(ConformanceError, match="events not idempotent"):
        check_store(store)
