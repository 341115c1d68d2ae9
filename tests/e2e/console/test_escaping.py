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


def test_hostile_stix_from_a_partner_is_shown_literally(page: object, console: ConsoleWorld) -> None:
    """A partner's STIX report and indicator whose fields hold markup, imported through the one import use
    case (and a second bundle that is quarantined): the sharing page shows the text, nothing runs."""
    from healthsec.services.share_sync import Quarantined, import_stix

    org = console.b
    store = console.org_store(org)
    stamp = "2026-11-30T09:00:00.000Z"
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--6b1b5a3c-3f0e-4b7e-9a43-0c1c1f0f8a11",
        "created": stamp,
        "modified": stamp,
        "name": ONERROR,
        "description": SCRIPT,
        "pattern": "[ipv4-addr:value = '203.0.113.5']",
        "pattern_type": "stix",
        "valid_from": stamp,
    }
    report = {
        "type": "report",
        "spec_version": "2.1",
        "id": "report--0d5b4b0e-8a8f-4e55-a7f4-7c2f6d1b2c33",
        "created": stamp,
        "modified": stamp,
        "name": f"report {SCRIPT}",
        "description": ONERROR,
        "published": stamp,
        "object_refs": [indicator["id"]],
    }
    good = {
        "type": "bundle",
        "id": "bundle--3e0f5c1e-2b7a-4d8e-9f10-1a2b3c4d5e6f",
        "objects": [indicator, report],
    }
    bad = {"type": "bundle", "id": "bundle--nope", "objects": [{"type": "report", "name": SCRIPT}]}
    source = f"partner-x{ONERROR}"
    assert import_stix(store, orjson_dumps(good), source=source, actor="test").added == 2
    with pytest.raises(Quarantined):
        import_stix(store, orjson_dumps(bad), source=source, actor="test")
    sign_in(page, org.tokens["analyst"], next_path="/sharing")
    main = page.text_content("main") or ""  # type: ignore[attr-defined]
    assert source in main  # the partner-given name, as text, in "Received" and the quarantine list
    assert page.locator("main img, main script").count() == 0  # type: ignore[attr-defined]
    for path in ("/intel", "/incidents?status=all", "/audit"):
        page.goto(path)  # type: ignore[attr-defined]
        assert page.locator("main img, main script").count() == 0, path  # type: ignore[attr-defined]
    # the page fixture fails the test if any dialog opened


def orjson_dumps(obj: object) -> bytes:
    import orjson

    return orjson.dumps(obj)
