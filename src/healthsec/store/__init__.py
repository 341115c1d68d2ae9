"""Persistence: repositories per aggregate over SQLAlchemy 2, SQLite by default, PostgreSQL by URL.

The names below are imported on first use (PEP 562), so ``from healthsec.store import StoreError``
does not load SQLAlchemy: a command can catch store errors and still start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from healthsec.store.errors import StoreError

if TYPE_CHECKING:
    from healthsec.store.sql import DEFAULT_ORG, Store, migrate, normalise_url, open_engine

__all__ = ["DEFAULT_ORG", "Store", "StoreError", "migrate", "normalise_url", "open_engine"]
_FROM_SQL = frozenset({"DEFAULT_ORG", "Store", "migrate", "normalise_url", "open_engine"})


def __getattr__(name: str) -> Any:
    if name in _FROM_SQL:
        return getattr(importlib.import_module("healthsec.store.sql"), name)
    raise AttributeError(f"module 'healthsec.store' has no attribute {name!r}")
