"""The console over replayed demo data: overview, an incident's status and triage, live updates, isolation."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from console_helpers import ConsoleWorld, shot, sign_in
from playwright.sync_api import expect

from healthsec.model import Alert, Incident, Severity

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _api(console: ConsoleWorld, token: str) -> httpx.Client:
    return httpx.Client(base_url=console.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture(scope="module")
def replayed(console: ConsoleWorld) -> list[dict[str, object]]:
    """Org a after `healthsec replay` of demo seed 7 (ransomware) into the served app: its incidents."""
    token = console.a.tokens["admin"]
    cmd = [
        sys.executable,
        "-m",
        "healthsec.cli",
        "replay",
        "--to",
        console.url,
        "--token",
        token,
        "--seed",
        "7",
    ]
    cmd += ["--campaign", "ransomware"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    with _api(console, console.a.tokens["analyst"]) as api:
        deadline = time.monotonic() + 180  # the service detects the last hour once the events stop
        while True:
            items = api.get("/api/v1/incidents", params={"limit": 1000}).json()["items"]
            if items or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert items, "the replay raised no incident"
    return items


def test_overview_lists_the_replayed_incidents(
    page: object, console: ConsoleWorld, replayed: list[dict[str, object]]
) -> None:
    sign_in(page, console.a.tokens["analyst"])
    total = page.text_content("[data-testid=open-total]")  # type: ignore[attr-defined]
    assert int(total or "0") == sum(
        1 for i in replayed if i["status"] in ("open", "investigating", "contained")
    )
    newest = page.text_content("[data-testid=newest]")  # type: ignore[attr-defined]
    assert any(str(i["title"]) in newest for i in replayed)
    assert page.locator("svg.chart rect").count() == 24  # type: ignore[attr-defined]
    shot(page, "overview")
    page.click("header nav >> text=Incidents")  # type: ignore[attr-defined]
    rows = page.locator("#incident-rows tbody tr")  # type: ignore[attr-defined]
    assert rows.count() == min(50, len(replayed))
    shot(page, "incidents")


def test_change_status_and_triage_seen_through_the_api(
    page: object, console: ConsoleWorld, replayed: list[dict[str, object]]
) -> None:
    target = replayed[0]
    sign_in(page, console.a.tokens["analyst"], next_path=f"/incidents/{target['id']}")
    assert page.locator("svg.chart circle").count() >= 1  # type: ignore[attr-defined]  # entity graph
    shot(page, "incident")
    page.select_option("#new-status", "investigating")  # type: ignore[attr-defined]
    page.fill("#note", "looking at it")  # type: ignore[attr-defined]
    page.click("form[action$='/status'] button")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    assert page.text_content("[data-testid=status]") == "investigating"  # type: ignore[attr-defined]
    first_alert = page.locator("input[name=alert_id]").first  # type: ignore[attr-defined]
    alert_id = first_alert.get_attribute("value")
    first_alert.check()
    page.select_option("#verdict", "false_positive")  # type: ignore[attr-defined]
    page.click("form[action$='/triage'] button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    with _api(console, console.a.tokens["auditor"]) as api:
        assert api.get(f"/api/v1/incidents/{target['id']}").json()["status"] == "investigating"
        shown = api.get(f"/api/v1/alerts/{alert_id}").json()
        assert shown["verdict"]["verdict"] == "false_positive"
        assert shown["verdict"]["actor"].startswith("token:")


def test_auditor_sees_but_cannot_change(
    page: object, console: ConsoleWorld, replayed: list[dict[str, object]]
) -> None:
    target = replayed[-1]
    sign_in(page, console.a.tokens["auditor"], next_path=f"/incidents/{target['id']}")
    assert page.locator("form[action$='/status']").count() == 0  # type: ignore[attr-defined]
    r = page.request.post(  # type: ignore[attr-defined]
        f"/incidents/{target['id']}/status",
        form={"status": "closed", "csrf": page.get_attribute("input[name=csrf]", "value")},  # type: ignore[attr-defined]
    )
    assert r.status == 403
    with _api(console, console.a.tokens["auditor"]) as api:
        assert api.get(f"/api/v1/incidents/{target['id']}").json()["status"] != "closed"


def test_other_organisation_gets_404_and_sees_nothing(
    page: object, console: ConsoleWorld, replayed: list[dict[str, object]]
) -> None:
    target = replayed[0]
    sign_in(page, console.b.tokens["admin"])
    r = page.goto(f"/incidents/{target['id']}")  # type: ignore[attr-defined]
    assert r.status == 404
    assert str(target["title"]) not in page.content()  # type: ignore[attr-defined]
    for path in ("/", "/incidents?status=all", "/alerts"):
        page.goto(path)  # type: ignore[attr-defined]
        assert str(target["id"]) not in page.content(), path  # type: ignore[attr-defined]
    r = page.request.post(  # type: ignore[attr-defined]
        f"/incidents/{target['id']}/status",
        form={"status": "closed", "csrf": page.get_attribute("input[name=csrf]", "value")},  # type: ignore[attr-defined]
    )
    assert r.status == 404


def test_new_incident_and_alert_appear_without_reload(page: object, console: ConsoleWorld) -> None:
    store = console.org_store(console.b)
    sign_in(page, console.b.tokens["analyst"])
    before = int(page.text_content("[data-testid=open-total]") or "0")  # type: ignore[attr-defined]
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    alert = Alert(
        id=f"live-{t0.timestamp():.0f}",
        ts=t0,
        detector="test.live",
        detector_version="1",
        title="live alert arrives",
        score=0.8,
        severity=Severity.CRITICAL,
        explanation="written straight into the store",
    )
    store.alerts.add_many([alert])
    store.incidents.upsert_many(
        [
            Incident(
                id=f"in-{alert.id}",
                title="live incident arrives",
                first_seen=t0,
                last_seen=t0,
                severity=Severity.CRITICAL,
                score=0.8,
                alert_ids=(alert.id,),
            )
        ]
    )
    # the overview polls (console_poll_s = 1 s in the fixture); no reload here
    expect(page.locator("[data-testid=open-total]")).to_have_text(str(before + 1), timeout=15_000)  # type: ignore[attr-defined]
    assert "live incident arrives" in page.text_content("[data-testid=newest]")  # type: ignore[attr-defined]
    page.goto("/alerts")  # type: ignore[attr-defined]
    second = dataclasses_replace(alert, id=alert.id + "-2", title="second live alert")
    store.alerts.add_many([second])
    expect(page.locator("#alert-rows")).to_contain_text("second live alert", timeout=15_000)  # type: ignore[attr-defined]


def dataclasses_replace(alert: Alert, **changes: object) -> Alert:
    import dataclasses

    return dataclasses.replace(alert, **changes)  # type: ignore[arg-type]
