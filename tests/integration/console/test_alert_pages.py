"""The console's alert list pages by key (newest first): Older and Newer walk every alert once, in order;
a cursor that names no alert is a clear 422, not a traceback; the count stops at its bound."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from healthsec.api import create_app
from healthsec.config import load_settings
from healthsec.model import Alert, Severity
from healthsec.store import Store
from healthsec.store.auth import AuthStore
from healthsec.web.pages import alerts as page

pytestmark = [pytest.mark.integration]
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _ids(html: str) -> list[str]:
    return re.findall(r'data-testid="verdict-([^"]+)"', html)


def _link(html: str, label: str) -> str | None:
    found = re.search(r'<a href="([^"]+)">' + re.escape(label), html)
    return None if found is None else found.group(1).replace("&amp;", "&")


def test_keyset_pages_walk_every_alert_both_ways(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page, "COUNT_UP_TO", 100)
    n = 120
    store.alerts.add_many(
        [
            Alert(
                id=f"al-{i:04d}",
                ts=T0 + timedelta(seconds=i // 3),  # ties on time: the id orders them
                detector="d",
                detector_version="1",
                title=f"alert {i}",
                score=0.5,
                severity=Severity.LOW,
                explanation="x",
            )
            for i in range(n)
        ]
    )
    auth = AuthStore(store.engine)
    auth.create_org(store.org)
    token = auth.create_token(store.org, "analyst", "a")[1]
    app = create_app(load_settings(db="sqlite:///unused.db", detectors_disabled=("sigma",)), store=store)
    newest_first = [f"al-{i:04d}" for i in reversed(range(n))]
    with TestClient(app) as c:
        pre = re.search(r'name="csrf" value="([^"]+)"', c.get("/sign-in").text)
        assert pre is not None
        c.post("/sign-in", data={"csrf": pre.group(1), "token": token, "next": "/alerts"})
        first = c.get("/alerts").text
        assert "100+ alerts, newest first" in first  # the bound, not a count of everything
        seen, html, pages = _ids(first), first, [first]
        while (older := _link(html, "Older")) is not None:
            html = c.get(older).text
            seen += _ids(html)
            pages.append(html)
        assert seen == newest_first
        assert len(pages) == 3 and _link(first, "← Newer") is None
        back = c.get(_link(pages[2], "← Newer") or "").text  # from the oldest page one page newer
        assert _ids(back) == _ids(pages[1])
        top = c.get(_link(back, "← Newer") or "").text  # no full page newer: the newest page, live
        assert _ids(top) == _ids(first) and 'hx-get="/live/alerts' in top
        bad = c.get("/alerts?after=no-such-alert")  # a cursor naming no alert: not found, as in the API
        assert bad.status_code == 404
        assert "no alert &#39;no-such-alert&#39;" in bad.text and "Traceback" not in bad.text
