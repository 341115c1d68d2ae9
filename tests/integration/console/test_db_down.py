"""A dead database gives the console's 503 page (not a traceback); the console recovers when it returns."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from healthsec.api import create_app
from healthsec.config import load_settings
from healthsec.store import Store
from healthsec.store.auth import AuthStore

pytestmark = [pytest.mark.postgres, pytest.mark.integration]
PG_URL = os.environ.get("HEALTHSEC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def own_database() -> Iterator[tuple[str, object]]:
    """A database of this test alone (so switching it off touches nobody else); dropped afterwards."""
    name = f"console_down_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        make_url(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url, admin
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            conn.execute(
                text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _switch(admin: object, name: str, *, on: bool) -> None:
    with admin.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if on else "false"}'))
        if not on:
            conn.execute(
                text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            )


def test_database_down_then_back(own_database: tuple[str, object]) -> None:
    url, admin = own_database
    name = make_url(url).database or ""
    store = Store.open(url, "h1")
    auth = AuthStore(store.engine)
    auth.create_org("h1")
    token = auth.create_token("h1", "analyst", "a")[1]
    app = create_app(load_settings(db="sqlite:///unused.db", detectors_disabled=("sigma",)), store=store)
    with TestClient(app) as c:
        pre = re.search(r'name="csrf" value="([^"]+)"', c.get("/sign-in").text)
        assert pre is not None
        r = c.post("/sign-in", data={"csrf": pre.group(1), "token": token, "next": "/incidents"})
        assert r.status_code == 200
        _switch(admin, name, on=False)
        r = c.get("/incidents")
        assert r.status_code == 503
        assert "Database unavailable" in r.text
        assert "Traceback" not in r.text
        assert r.headers["content-type"].startswith("text/html")
        _switch(admin, name, on=True)
        r = c.get("/incidents")  # same session: nothing was lost while the database was away
        assert r.status_code == 200
        assert "No incident matches" in r.text
    store.close()
