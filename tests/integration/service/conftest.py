"""Fixtures for the service tests: an API over a real store (SQLite and PostgreSQL) with two tenants."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from service_helpers import PORT_SPEC, World, make_tenant, seed

from healthsec.api import create_app
from healthsec.api.ingest import MemorySink
from healthsec.config import load_settings
from healthsec.pipeline import Detection
from healthsec.store import Store


@pytest.fixture
def world(store: Store) -> Iterator[World]:
    """Organisations ``<org>-a`` and ``<org>-b`` with a token per role and seeded data in each."""
    a = make_tenant(store, f"{store.org}-a")
    b = make_tenant(store, f"{store.org}-b")
    seeded_a, seeded_b = seed(store, a.org), seed(store, b.org)
    settings = load_settings(db="sqlite:///unused.db", max_body_bytes=64 * 1024, max_batch_events=100)
    sink = MemorySink(Detection(store, settings, owner="test-api", role="api", specs=[PORT_SPEC]))
    app = create_app(settings, store=store, sink=sink)
    with TestClient(app) as client:
        yield World(client, store, a, b, seeded_b, seeded_a, sink)
