"""Sign-in, roles, CSRF and sign-out in a real browser (Chromium through Playwright)."""

from __future__ import annotations

import httpx
import pytest
from console_helpers import ConsoleWorld, shot, sign_in

pytestmark = [pytest.mark.postgres]


def test_sign_in_then_out(page: object, console: ConsoleWorld) -> None:
    page.goto("/incidents")  # type: ignore[attr-defined]
    assert "/sign-in" in page.url  # type: ignore[attr-defined]
    page.fill("#token", "hst_0000000000000000.not-a-real-token-at-all")  # type: ignore[attr-defined]
    page.click("form[action='/sign-in'] button[type=submit]")  # type: ignore[attr-defined]
    assert "Sign-in refused" in page.text_content("main")  # type: ignore[attr-defined]
    shot(page, "sign-in")
    sign_in(page, console.a.tokens["analyst"], next_path="/incidents")
    nav = page.locator("header nav a").all_text_contents()  # type: ignore[attr-defined]
    assert nav == [
        "Overview",
        "Incidents",
        "Alerts",
        "Assets & risk",
        "Attack paths",
        "Cases",
        "Sharing",
        "Intel",
        "Detectors & models",
        "Audit log",
    ]
    cookies = {c["name"]: c for c in page.context.cookies()}  # type: ignore[attr-defined]
    session = cookies["healthsec_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    page.click("text=Sign out")  # type: ignore[attr-defined]
    page.wait_for_url("**/sign-in")  # type: ignore[attr-defined]
    # the old cookie no longer opens anything: the session is gone server-side
    r = httpx.get(
        f"{console.url}/incidents", cookies={"healthsec_session": session["value"]}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")


@pytest.mark.parametrize("role", ["sensor", "partner"])
def test_ingest_and_partner_tokens_cannot_sign_in(page: object, console: ConsoleWorld, role: str) -> None:
    page.goto("/sign-in")  # type: ignore[attr-defined]
    page.fill("#token", console.a.tokens[role])  # type: ignore[attr-defined]
    page.click("form[action='/sign-in'] button[type=submit]")  # type: ignore[attr-defined]
    assert f"a {role} token cannot sign in" in page.text_content("main")  # type: ignore[attr-defined]
    assert "healthsec_session" not in {c["name"] for c in page.context.cookies()}  # type: ignore[attr-defined]


def test_post_without_csrf_is_refused(page: object, console: ConsoleWorld) -> None:
    sign_in(page, console.a.tokens["analyst"])
    # the browser's own cookie, a form without the token: refused, still signed in
    r = page.request.post("/sign-out", form={})  # type: ignore[attr-defined]
    assert r.status == 403
    assert "token" in r.text()
    page.goto("/")  # type: ignore[attr-defined]
    assert "/sign-in" not in page.url  # type: ignore[attr-defined]


def test_unknown_page_is_a_404_page_with_strict_headers(page: object, console: ConsoleWorld) -> None:
    sign_in(page, console.a.tokens["auditor"])
    r = page.goto("/no/such/page")  # type: ignore[attr-defined]
    assert r.status == 404
    assert "There is no page at this address" in page.text_content("main")  # type: ignore[attr-defined]
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY"
