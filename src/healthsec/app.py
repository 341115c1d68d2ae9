"""The composition root: builds adapters from Settings; shared by the API, the CLI and workers."""

from __future__ import annotations

import os

from healthsec.bus import InProcessBus
from healthsec.config import Settings, load_settings
from healthsec.store import Store


def resolve_db(db: str | None) -> str:
    """``--db`` wins, then ``HEALTHSEC_DB``, then the embedded default."""
    if db:
        return db
    return os.environ.get("HEALTHSEC_DB") or load_settings().db


def open_store(db: str | None = None, org: str | None = None, settings: Settings | None = None) -> Store:
    """Open (and migrate) the store named by ``db`` or the settings."""
    settings = settings or load_settings()
    return Store.open(resolve_db(db), org or settings.org)


def make_bus(settings: Settings | None = None) -> InProcessBus:
    """The bus the settings ask for; the in-process bus is the default."""
    del settings  # one kind of bus so far; Settings.bus only admits "memory"
    return InProcessBus()
