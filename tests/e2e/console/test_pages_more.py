"""The console's other pages in a real browser, over data seeded through the use cases: Assets & risk,
Attack paths, Cases (approve a containment request), Sharing (the exit door's preview), Intel, Detectors &
models, Audit log; the read-only role sees no control and is refused server-side; unknown ids give 404."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from console_helpers import ConsoleWorld, Org, shot, sign_in
from seed_pages import Seeded, seed_pages

from healthsec.config import Settings
from healthsec.services.cases import CaseService
from healthsec.store.auth import AuthStore

pytestmark = [pytest.mark.postgres]
KEY_HEX = "c2" * 32


@pytest.fixture(scope="module")
def hospital(console: ConsoleWorld, shared_data: Path) -> tuple[Org, Seeded]:
    """An organisation of its own (the other console tests keep theirs), seeded once for this module."""
    auth = AuthStore(console.store.engine)
    org = f"conc-{uuid.uuid4().hex[:8]}"
    auth.create_org(org)
    tokens = {r: auth.create_token(org, r, f"{r}-{org}")[1] for r in ("admin", "analyst", "auditor")}
    settings = Settings(db="sqlite:///unused.db", org=org, jurisdictions=("eu:DE",))
    seeded = seed_pages(console.store.for_org(org), settings, shared_data)
    return Org(org, tokens), seeded


def _text(page: object, selector: str = "main") -> str:
    return str(page.text_content(selector))  # type: ignore[attr-defined]


def test_assets_asset_and_attack_paths(page: object, hospital: tuple[Org, Seeded]) -> None:
    org, _ = hospital
    sign_in(page, org.tokens["analyst"], next_path="/assets")
    rows = page.locator("#assets tbody tr")  # type: ignore[attr-defined]
    assert rows.count() == 5
    pump = _text(page, "#assets tbody tr:has-text('pump-13')")
    assert "life sustaining" in pump and "yes" in pump  # clinical criticality, patient-connected
    isp = _text(page, "#assets tbody tr:has-text('isp-01')")
    assert "Philips IntelliSpace Portal 8.0.2" in isp and "9.8" in isp  # product, highest CVSS
    shot(page, "assets")
    page.click("#assets a:text-is('isp-01')")  # type: ignore[attr-defined]
    page.wait_for_url("**/assets/isp-01")  # type: ignore[attr-defined]
    kev = _text(page, "#vulns tbody tr:has-text('CVE-2017-0144')")
    assert "yes" in kev and "0.940" in kev  # known exploited, EPSS
    assert "CVE-2017-0144 is known exploited" in _text(page)  # the risk explanation says why
    assert "'Philips' ~ 'Phillips'" in _text(page, "#asset-matches")
    page.goto("/paths")  # type: ignore[attr-defined]
    svg = page.locator("svg.paths-graph")  # type: ignore[attr-defined]
    assert svg.count() == 1
    assert page.locator("svg.paths-graph g.node-target").count() >= 1  # type: ignore[attr-defined]
    assert page.locator("#fixes tbody tr").count() >= 1  # type: ignore[attr-defined]
    shot(page, "attack-paths")
    page.fill("#to", "pump-13")  # type: ignore[attr-defined]
    page.click("form[action='/paths'] button")  # type: ignore[attr-defined]
    assert "Attack paths to pump-13" in _text(page, "h1")


def test_case_page_approve_containment(
    page: object, console: ConsoleWorld, hospital: tuple[Org, Seeded]
) -> None:
    org, seeded = hospital
    sign_in(page, org.tokens["analyst"], next_path="/cases")
    row = _text(page, "#cases tbody tr")
    assert "Spoofed medical-device telemetry" in row and "due" in row  # NIS2 clocks run from 2027-03-03
    page.click("#cases a")  # type: ignore[attr-defined]
    page.wait_for_url(f"**/cases/{seeded.case_id}")  # type: ignore[attr-defined]
    card = page.locator(f"#ctn-{seeded.pump_request}")  # type: ignore[attr-defined]
    assert "patient-connected" in card.text_content()
    assert "POST <nac-api-url>/quarantine" in card.locator("pre.dry-run").text_content()
    clocks = _text(page, "#clock-table")
    assert "NIS2" in clocks and "early warning" in clocks and "2027-03-04 14:30:00" in clocks
    assert page.locator("a[href$='/drafts/nis2.pdf']").count() == 1  # type: ignore[attr-defined]
    shot(page, "case")
    page.click(f"button[data-approve='{seeded.pump_request}']")  # type: ignore[attr-defined]
    page.wait_for_url(f"**/cases/{seeded.case_id}#containment")  # type: ignore[attr-defined]
    assert page.locator(f"#ctn-{seeded.pump_request}").count() == 0  # type: ignore[attr-defined]
    assert "approved" in _text(page, "#decided tbody tr:has-text('pump-13')")
    assert "containment.approved" in _text(page, "#timeline")
    entry = CaseService(console.store.for_org(org.org)).repo.entry(seeded.pump_request)
    assert entry is not None and entry["body"]["status"] == "approved"
    assert entry["body"]["decided_by"].startswith("token:") and entry["body"]["executed"] is False
    # tasks and comments through the forms; closing without lessons learnt is refused
    page.fill("#t-title", "Swap pump-13 for a spare")  # type: ignore[attr-defined]
    page.fill("#t-owner", "biomed")  # type: ignore[attr-defined]
    page.click("form[action$='/tasks'] button")  # type: ignore[attr-defined]
    assert "Swap pump-13 for a spare" in _text(page, "#task-table")
    page.fill("#c-text", "<img src=x onerror=alert(1)> bedside check done")  # type: ignore[attr-defined]
    page.click("form[action$='/comments'] button")  # type: ignore[attr-defined]
    assert "<img src=x onerror=alert(1)> bedside check done" in _text(page, "#comments")
    page.fill("#x-res", "pump replaced")  # type: ignore[attr-defined]
    page.click("form[action$='/close'] button")  # type: ignore[attr-defined]
    assert "lessons-learnt" in _text(page)
    md = page.request.get(f"/cases/{seeded.case_id}/drafts/nis2.md")  # type: ignore[attr-defined]
    assert md.status == 200 and md.text().startswith("# ")
    pdf = page.request.get(f"/cases/{seeded.case_id}/drafts/nis2.pdf")  # type: ignore[attr-defined]
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    assert page.request.get(f"/cases/{seeded.case_id}/drafts/gdpr.exe").status == 404  # type: ignore[attr-defined]
    page.goto(f"/cases/{seeded.case_id}")  # type: ignore[attr-defined]
    page.click("form[action*='/clocks/nis2.early_warning/met'] button")  # type: ignore[attr-defined]
    assert "met" in _text(page, "#clock-table tbody tr:has-text('early warning')")
    assert "clock.met" in _text(page, "#timeline")


def _csrf(page: object) -> str:
    headers = page.get_attribute("body", "hx-headers")  # type: ignore[attr-defined]
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', headers or "")
    assert found, headers
    return found.group(1)


def test_read_only_role_sees_no_controls_and_is_refused(
    page: object, console: ConsoleWorld, hospital: tuple[Org, Seeded]
) -> None:
    org, seeded = hospital
    sign_in(page, org.tokens["auditor"], next_path=f"/cases/{seeded.case_id}")
    main = page.locator("main")  # type: ignore[attr-defined]
    assert main.locator("form[method=post]").count() == 0
    assert main.locator("a[href*='/drafts/']").count() == 0
    csrf = _csrf(page)
    svc = CaseService(console.store.for_org(org.org))
    waiting = [c for c in svc.show(seeded.case_id)["containment"] if c["status"] == "awaiting_approval"]
    assert waiting
    target = waiting[0]["id"]
    r = page.request.post(  # type: ignore[attr-defined]
        f"/cases/{seeded.case_id}/containment/{target}/approve", form={"csrf": csrf}
    )
    assert r.status == 403 and "may look but not change" in r.text()
    assert svc.repo.entry(target)["body"]["status"] == "awaiting_approval"  # type: ignore[index]
    r = page.request.post(f"/cases/{seeded.case_id}/comments", form={"csrf": csrf, "text": "x"})  # type: ignore[attr-defined]
    assert r.status == 403
    assert page.request.get(f"/cases/{seeded.case_id}/drafts/nis2.md").status == 403  # type: ignore[attr-defined]
    page.goto("/detectors")  # type: ignore[attr-defined]
    assert "Only an administrator promotes or retires a model" in _text(page)
    assert page.goto("/sharing").status == 403  # type: ignore[attr-defined]  # as GET /api/v1/partners


def test_roles_read_as_in_the_api(page: object, hospital: tuple[Org, Seeded]) -> None:
    org, _ = hospital
    sign_in(page, org.tokens["analyst"])
    r = page.goto("/audit")  # type: ignore[attr-defined]
    assert r.status == 403 and "may not read the audit log" in _text(page)  # as GET /api/v1/audit


def test_sharing_preview_is_pseudonymised(
    page: object, hospital: tuple[Org, Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    org, seeded = hospital
    monkeypatch.setenv("HEALTHSEC_SHARING_KEY", KEY_HEX)  # the served app runs in this process
    sign_in(page, org.tokens["analyst"], next_path="/sharing")
    assert "TLP:GREEN" in _text(page, "#partners tbody tr:has-text('north')")
    coll = _text(page, "#collections tbody tr:has-text('ours')")
    assert "north" in coll
    assert "share.publish" in _text(page, "#sent") and "share.import" in _text(page, "#received")
    page.select_option("#p-inc", seeded.incident_id)  # type: ignore[attr-defined]
    page.select_option("#p-partner", "north")  # type: ignore[attr-defined]
    page.select_option("#p-tlp", "green")  # type: ignore[attr-defined]
    page.click("form[action='/sharing#preview'] button")  # type: ignore[attr-defined]
    summary = _text(page, "#preview-summary")
    assert "for north at TLP:GREEN" in summary
    body = _text(page, "#preview-body")
    assert '"type": "bundle"' in body and "10.20.1.250" not in body and "pump-13" not in body
    shot(page, "sharing")
    page.select_option("#p-tlp", "amber")  # type: ignore[attr-defined]
    page.click("form[action='/sharing#preview'] button")  # type: ignore[attr-defined]
    assert "withholds everything" in _text(page, "#preview")  # north's policy stops at GREEN


def test_intel_detectors_and_audit(page: object, hospital: tuple[Org, Seeded]) -> None:
    org, _ = hospital
    sign_in(page, org.tokens["admin"], next_path="/intel")
    isp = _text(page, "#matches tbody tr:has-text('isp-01')")
    assert "ICSMA-18-058-02" in isp and "CVE-2017-0144" in isp and "0.940" in isp
    assert "'Philips' ~ 'Phillips'" in isp
    assert "1 entries as of 2025-08-25" in _text(page)
    shot(page, "intel")
    page.click("#advisories a:text-is('ICSMA-21-187-01')")  # type: ignore[attr-defined]
    page.wait_for_url("**/intel/advisories/ICSMA-21-187-01")  # type: ignore[attr-defined]
    assert "pacs-01" in _text(page) and page.locator("#products tbody tr").count() >= 1  # type: ignore[attr-defined]
    page.goto("/detectors")  # type: ignore[attr-defined]
    assert page.locator("#detectors tbody tr").count() >= 5  # type: ignore[attr-defined]
    shot(page, "detectors")
    page.goto("/audit?action=share.")  # type: ignore[attr-defined]
    actions = page.locator("#audit tbody tr td:nth-child(3)").all_text_contents()  # type: ignore[attr-defined]
    assert actions and all(a.startswith("share.") for a in actions)
    page.goto("/audit")  # type: ignore[attr-defined]
    assert "assets.upsert" in _text(page, "#audit")
    shot(page, "audit")
    page.goto("/audit?since=yesterday")  # type: ignore[attr-defined]
    assert "not a date and time" in _text(page)


@pytest.mark.parametrize(
    "path",
    ["/cases/case-404", "/assets/no-such-asset", "/intel/advisories/ICSMA-00-000-00", "/paths?to=nope"],
)
def test_unknown_ids_are_404_pages(page: object, hospital: tuple[Org, Seeded], path: str) -> None:
    org, _ = hospital
    sign_in(page, org.tokens["auditor"])
    r = page.goto(path)  # type: ignore[attr-defined]
    assert r.status == 404 and "Not found" in _text(page, "h1")


def test_another_organisation_cannot_open_the_case(
    page: object, console: ConsoleWorld, hospital: tuple[Org, Seeded]
) -> None:
    _, seeded = hospital
    sign_in(page, console.b.tokens["analyst"])
    assert page.goto(f"/cases/{seeded.case_id}").status == 404  # type: ignore[attr-defined]
    page.goto("/cases")  # type: ignore[attr-defined]
    assert seeded.case_id not in _text(page)
    r = page.request.post(  # type: ignore[attr-defined]
        f"/cases/{seeded.case_id}/containment/{seeded.pump_request}/approve", form={"csrf": _csrf(page)}
    )
    assert r.status == 404
