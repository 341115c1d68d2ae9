"""Browser fixtures: one served app (uvicorn on a loopback port, PostgreSQL) and one Chromium per test module.

Chromium is module-scoped, not session-scoped: Playwright's sync API keeps an event loop running in the
main thread while it is open, so later tests that call ``asyncio.run`` (the NATS and listener integration
tests) would fail in a whole-suite run. (pytest keeps "package" fixtures of a folder without
``__init__.py`` to the end of the session, so package scope does not help.)

``console`` gives the base URL, the store and two organisations (``a`` and ``b``) with a token per role;
``page`` is a fresh browser context (no cookies) per test; ``sign_in(page, token)`` (console_helpers) signs
in through the form.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

sys.path.insert(0, str(Path(__file__).parent))

from console_helpers import ConsoleWorld, Org

from healthsec.api import create_app
from healthsec.config import load_settings
from healthsec.store import Store, StoreError
from healthsec.store.auth import AuthStore

PG_URL = os.environ.get("HEALTHSEC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
CHROMIUM = "/usr/bin/chromium"
ROLES = ("admin", "analyst", "auditor", "sensor", "partner")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tenant(auth: AuthStore, org: str) -> Org:
    auth.create_org(org)
    return Org(org, {role: auth.create_token(org, role, f"{role}-{org}")[1] for role in ROLES})


@pytest.fixture(scope="session")
def console() -> Iterator[ConsoleWorld]:
    """The API with its console served by uvicorn on 127.0.0.1:<free port>, over PostgreSQL."""
    tag = uuid.uuid4().hex[:8]
    try:
        store = Store.open(PG_URL, f"console-{tag}")
    except StoreError as exc:
        pytest.fail(f"PostgreSQL is required for the console tests: {exc}")
    auth = AuthStore(store.engine)
    a, b = _tenant(auth, f"cona-{tag}"), _tenant(auth, f"conb-{tag}")
    # Sigma is off: parsing the SigmaHQ set costs ~40 s per process and the console tests need no rule.
    # Detection waits for 5 quiet seconds, so it runs after a replay, not between its batches.
    settings = load_settings(
        db="sqlite:///unused.db", console_poll_s=1.0, detection_idle_s=5.0, detectors_disabled=("sigma",)
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, store=store), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the console server did not start"
        time.sleep(0.05)
    try:
        yield ConsoleWorld(f"http://127.0.0.1:{port}", store, a, b)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's browser: apt-get install -y chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: object, console: ConsoleWorld) -> Iterator[object]:
    """A fresh context (no cookies) at 1280x800; any JavaScript dialog fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=console.url)  # type: ignore[attr-defined]
    pg = context.new_page()
    dialogs: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.set_default_timeout(60_000)  # generous: CI machines are shared
    yield pg
    context.close()
    assert not dialogs, f"a script ran and opened a dialog: {dialogs}"
