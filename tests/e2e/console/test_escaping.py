"""Hostile text from every input is shown literally: no script runs, no handler fires (no dialog opens)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from console_helpers import ConsoleWorld, sign_in

from healthsec.model import Alert, Entity, EntityKind, Incident, Severity
from healthsec.model.codec import to_dict
from healthsec.model.events import ClinicalMessage, LogRecord

pytestmark = [pytest.mark.postgres]
SCRIPT = "<script>alert('hl7')</script>"
ONERROR = "<img src=x onerror=alert('log')>"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_hostile_hl7_log_and_alert_text_is_shown_literally(page: object, console: ConsoleWorld) -> None:
    org = console.b
    hl7 = ClinicalMessage(
        id="xss-hl7",
        ts=T0,
        source="hl7-mllp",
        protocol="hl7",
        message_type=f"ADT^A01{SCRIPT}",
        sender=ONERROR,
        fields={"MSH-10": SCRIPT, "EVN": ONERROR},
    )
    log = LogRecord(
        id="xss-log",
        ts=T0,
        source="syslog",
        host=f"ws-1{ONERROR}",
        message=f"failed login for {SCRIPT}",
        fields={"User": ONERROR},
    )
    # through the real ingest route (sensor token), as a sensor would send them
    r = httpx.post(
        f"{console.url}/api/v1/events",
        json={"events": [to_dict(hl7), to_dict(log)]},
        headers={"Authorization": f"Bearer {org.tokens['sensor']}"},
        timeout=60,
    )
    assert r.status_code in (200, 202), r.text
    store = console.org_store(org)
    alert = Alert(
        id="xss-alert",
        ts=T0,
        detector="test.xss",
        detector_version="1",
        title=f"odd HL7 sender {ONERROR}",
        score=0.7,
        severity=Severity.HIGH,
        explanation=f"sender {SCRIPT} never seen",
        evidence=("xss-hl7", "xss-log"),
        entities=(Entity(EntityKind.HOST, ONERROR), Entity(EntityKind.USER, SCRIPT)),
    )
    store.alerts.add_many([alert])
    store.incidents.upsert_many(
        [
            Incident(
                id="xss-incident",
                title=f"incident {SCRIPT}",
                first_seen=T0,
                last_seen=T0,
                severity=Severity.HIGH,
                score=0.7,
                alert_ids=(alert.id,),
                entities=alert.entities,
                summary=ONERROR,
            )
        ]
    )
    sign_in(page, org.tokens["analyst"], next_path="/incidents/xss-incident")
    page.fill("#comment", SCRIPT)  # type: ignore[attr-defined]
    page.click("form[action$='/comment'] button")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    for summary in page.locator("details summary").all():  # type: ignore[attr-defined]
        summary.click()
    main = page.text_content("main") or ""  # type: ignore[attr-defined]
    assert f"incident {SCRIPT}" in main
    assert f"odd HL7 sender {ONERROR}" in main
    assert f"message_type: ADT^A01{SCRIPT}" in main  # the HL7 evidence event
    assert f"message: failed login for {SCRIPT}" in main  # the log evidence event
    # nothing became markup: no element the payload would have made exists
    assert page.locator("main script").count() == 0  # type: ignore[attr-defined]
    assert page.locator("main img").count() == 0  # type: ignore[attr-defined]
    for path in ("/", "/incidents?status=all", "/alerts"):
        page.goto(path)  # type: ignore[attr-defined]
        assert page.locator("main img, main script").count() == 0, path  # type: ignore[attr-defined]
    assert SCRIPT in (page.text_content("#alert-rows") or "")  # type: ignore[attr-defined]
    # the page fixture fails the test if any dialog opened
