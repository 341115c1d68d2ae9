"""CSAF provider polling against a local HTTP server (127.0.0.1) serving shipped advisories: directory
distribution (index.txt) and a ROLIE feed; a broken document is named, the others stored."""

from __future__ import annotations

import functools
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from healthsec.services.intel import http_fetch, import_csaf, poll_providers
from healthsec.store import Store
from healthsec.store.intel import intel


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def provider(tmp_path: Path, shared_data: Path) -> Iterator[str]:
    root = tmp_path / "www"
    (root / "white").mkdir(parents=True)
    src = shared_data / "cisa-csaf-icsma"
    for name in ("2023/icsma-23-047-01.json", "2024/icsma-24-023-01.json"):
        shutil.copy(src / name, root / "white" / Path(name).name)
    shutil.copy(src / "2022/icsma-22-174-01.json", root / "rolie-22-174.json")
    (root / "white" / "broken.json").write_text("{", encoding="utf-8")
    (root / "white" / "index.txt").write_text("icsma-23-047-01.json\nicsma-24-023-01.json\nbroken.json\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    (root / "feed.json").write_text(
        json.dumps({"feed": {"entry": [{"content": {"src": "rolie-22-174.json"}}]}})
    )
    (root / "provider-metadata.json").write_text(
        json.dumps(
            {
                "canonical_url": f"{base}/provider-metadata.json",
                "distributions": [
                    {"directory_url": f"{base}/white/"},
                    {"rolie": {"feeds": [{"url": f"{base}/feed.json"}]}},
                ],
            }
        )
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"{base}/provider-metadata.json"
    server.shutdown()
    server.server_close()


def test_poll_reads_directory_and_rolie_distributions(provider: str, tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "hs.db"), "local")
    res = poll_providers(store, [provider], http_fetch(timeout=10))
    assert res.stored == 3
    assert len(res.errors) == 1 and "broken.json" in res.errors[0] and "not valid JSON" in res.errors[0]
    assert {a.id for a in intel(store).advisories()} == {
        "ICSMA-23-047-01",
        "ICSMA-24-023-01",
        "ICSMA-22-174-01",
    }
    again = poll_providers(
        store, [provider], http_fetch(timeout=10)
    )  # same revisions: stored again, no dupes
    assert intel(store).count("advisories") == 3 and again.stored == 3
    store.close()


def test_urls_are_fetched_only_when_a_fetcher_is_given(provider: str, tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "hs.db"), "local")
    url = provider.replace("provider-metadata.json", "white/icsma-23-047-01.json")
    res = import_csaf(store, [url])
    assert res.stored == 0 and "fetching URLs is not enabled" in res.errors[0]
    res = import_csaf(
        store, [url, provider.replace("provider-metadata.json", "nope.json")], http_fetch(timeout=10)
    )
    assert res.stored == 1 and "cannot fetch" in res.errors[0] and "404" in res.errors[0]
    unreachable = poll_providers(store, ["http://127.0.0.1:9/provider-metadata.json"], http_fetch(timeout=2))
    assert unreachable.stored == 0 and unreachable.errors
    store.close()


def test_service_polls_configured_providers_on_schedule(provider: str, tmp_path: Path) -> None:
    """The API's lifespan (what ``healthsec serve`` runs) polls at start and again every interval."""
    import time

    from fastapi.testclient import TestClient

    from healthsec.api.app import create_app
    from healthsec.config import load_settings

    store = Store.open(str(tmp_path / "hs.db"), "local")
    settings = load_settings(
        db="sqlite:///unused.db",
        intel_provider_urls=(provider,),
        intel_poll_interval_s=1,
        detectors=("auth-bruteforce",),  # the poll is under test, not detection: no SigmaHQ compile
    )

    def rounds() -> int:
        return len(store.audit.list(action="intel.import_csaf"))

    with TestClient(create_app(settings, store=store)):
        deadline = time.monotonic() + 120  # a deadline for a loaded machine, not a timing assertion
        while time.monotonic() < deadline and rounds() < 2:
            time.sleep(0.2)
        assert rounds() >= 2, "the service polled once, not on a schedule"
    assert {a.id for a in intel(store).advisories()} == {
        "ICSMA-23-047-01",
        "ICSMA-24-023-01",
        "ICSMA-22-174-01",
    }
    after = rounds()
    time.sleep(1.5)
    assert rounds() == after, "the poll kept running after the service stopped"
    store.close()


def test_service_fetches_nothing_without_providers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import healthsec.services.intel as svc

    def no_fetch(*_a: object, **_k: object) -> None:
        pytest.fail("the service built a fetcher with no provider configured")

    monkeypatch.setattr(svc, "http_fetch", no_fetch)
    monkeypatch.setattr(svc, "poll_on_schedule", no_fetch)
    import time

    from fastapi.testclient import TestClient

    from healthsec.api.app import create_app
    from healthsec.config import load_settings

    store = Store.open(str(tmp_path / "hs.db"), "local")
    with TestClient(
        create_app(load_settings(db="sqlite:///unused.db", detectors=("auth-bruteforce",)), store=store)
    ):
        time.sleep(0.5)
    assert intel(store).count("advisories") == 0
    store.close()


def test_poll_interval_setting_is_bounded() -> None:
    from healthsec.config import ConfigError, load_settings

    for bad in (0, -5, 30 * 86400):
        with pytest.raises(ConfigError, match="intel_poll_interval_s"):
            load_settings(intel_poll_interval_s=bad)
