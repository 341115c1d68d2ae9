"""Persistence: repositories per aggregate over SQLAlchemy 2, SQLite by default, PostgreSQL by URL."""

from healthsec.store.sql import DEFAULT_ORG, Store, StoreError, migrate, normalise_url, open_engine

__all__ = ["DEFAULT_ORG", "Store", "StoreError", "migrate", "normalise_url", "open_engine"]
