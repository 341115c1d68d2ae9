"""Use cases the console's pages read (SQLite and PostgreSQL): the audit filter, the inventory with risk,
the exit door's preview (nothing leaves, nothing recorded), the sharing overview, the intel overview."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from healthsec.model.vulns import Vulnerability
from healthsec.privacy.pseudonymise import SharingKeys
from healthsec.services import share as share_use
from healthsec.services.assets import inventory
from healthsec.services.audit import AuditQuery, audit_log
from healthsec.services.common import Invalid, NotFound, Refused
from healthsec.services.intel import intel_overview
from healthsec.share.stix_sample import sample_alerts, sample_incident
from healthsec.store import Store
from healthsec.store.vulns import vulns

KEYS = SharingKeys.from_secret(bytes.fromhex("5f" * 32))


def test_audit_filters_by_actor_action_family_target_and_time(store: Store) -> None:
    store.audit.record("token:a", "case.opened", "case-1")
    store.audit.record("token:b", "share.export", "partner-x", objects=3)
    store.audit.record("token:a", "share.publish", "ours")
    everything = audit_log(store)
    assert [r["action"] for r in everything] == ["share.publish", "share.export", "case.opened"]
    assert all(r["ts"].tzinfo is not None and "org" not in r for r in everything)
    assert [r["action"] for r in audit_log(store, AuditQuery(actor="token:a"))] == [
        "share.publish",
        "case.opened",
    ]
    assert [r["action"] for r in audit_log(store, AuditQuery(action="share."))] == [
        "share.publish",
        "share.export",
    ]
    assert [r["target"] for r in audit_log(store, AuditQuery(action="share.export"))] == ["partner-x"]
    assert audit_log(store, AuditQuery(action="share%")) == []  # no SQL wildcard through the filter
    assert [r["action"] for r in audit_log(store, AuditQuery(target="case-1"))] == ["case.opened"]
    now = datetime.now(UTC)
    assert len(audit_log(store, AuditQuery(since=now - timedelta(hours=1)))) == 3
    assert audit_log(store, AuditQuery(since=now + timedelta(hours=1))) == []
    assert len(audit_log(store, AuditQuery(until=now + timedelta(hours=1)))) == 3
    page = audit_log(store, AuditQuery(limit=2))
    older = audit_log(store, AuditQuery(limit=2, before=page[-1]["seq"]))
    assert [r["action"] for r in older] == ["case.opened"]


def test_audit_refuses_naive_times_reversed_ranges_and_bad_limits(store: Store) -> None:
    with pytest.raises(Invalid, match="since needs a time zone"):
        audit_log(store, AuditQuery(since=datetime(2026, 1, 1)))
    t = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(Invalid, match="must be before until"):
        audit_log(store, AuditQuery(since=t, until=t))
    with pytest.raises(Invalid, match=r"limit must be 1\.\.1000"):
        audit_log(store, AuditQuery(limit=0))


def test_inventory_lists_risk_findings_and_patient_connection(hospital: Store) -> None:
    vulns(hospital).upsert_many(
        [
            Vulnerability.create("web", "CVE-2021-44228", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"),
            Vulnerability.create("web", "CVE-2020-0001", None, base_score=4.0, known_exploited=True),
        ]
    )
    rows = inventory(hospital)
    assert [r.risk.score for r in rows] == sorted((r.risk.score for r in rows), reverse=True)
    by_id = {r.asset.id: r for r in rows}
    assert by_id["pump"].patient_connected and not by_id["ws1"].patient_connected
    web = by_id["web"]
    assert [v.cve for v in web.vulnerabilities] == ["CVE-2021-44228", "CVE-2020-0001"]  # worst first
    assert web.max_cvss == 10.0 and web.known_exploited == 1
    assert by_id["ws1"].max_cvss is None and by_id["ws1"].vulnerabilities == []


@pytest.fixture
def sharing(store: Store) -> Store:
    alerts = sample_alerts(4)
    store.alerts.add_many(alerts)
    store.incidents.upsert_many([sample_incident(alerts[:2], id="inc-1")])
    return store


def test_preview_is_the_exit_doors_output_and_records_nothing(sharing: Store) -> None:
    written: list[bytes] = []
    share_use.export_incidents(
        sharing, KEYS, sink=written.append, actor="t", producer="Hospital A", incident_ids=["inc-1"]
    )
    exported = orjson.loads(written[0])["objects"]
    before = len(sharing.audit.list())
    p = share_use.preview_export(sharing, KEYS, producer="Hospital A", incident_id="inc-1")
    assert len(sharing.audit.list()) == before  # a preview is not an export
    shown = orjson.loads(p.body)["objects"]
    assert (p.recipient, p.tlp, p.incidents, p.objects) == ("community", "amber", ["inc-1"], len(shown))
    # same objects as the real export (bundle ids differ per call, object ids are stable)
    assert sorted(o["id"] for o in shown) == sorted(o["id"] for o in exported)
    assert sum(p.types.values()) == p.objects
    for secret in ("MRN-0042-SECRET", "10.20.0.5", "dr.jones"):
        assert secret not in p.body  # patients, internal addresses and staff leave pseudonymised
    with pytest.raises(NotFound):
        share_use.preview_export(sharing, KEYS, producer="A", incident_id="inc-404")
    with pytest.raises(Refused, match="TLP:RED"):
        share_use.preview_export(sharing, KEYS, producer="A", incident_id="inc-1", tlp="red")
    with pytest.raises(NotFound, match="unknown partner"):
        share_use.preview_export(sharing, KEYS, producer="A", incident_id="inc-1", partner="nobody")


def test_sharing_overview_lists_collections_sent_and_received(sharing: Store) -> None:
    empty = share_use.sharing_overview(sharing)
    assert (empty.collections, empty.sent, empty.received, empty.quarantined) == ([], [], [], [])
    share_use.save_partner(
        sharing, "north", "North Hospital", actor="t", policy={"max_tlp": "green"}, read=["ours"]
    )
    share_use.publish(sharing, actor="t", producer="Hospital A")
    sharing.audit.record("t", "share.import", "south", added=2, rejected=0)
    ov = share_use.sharing_overview(sharing)
    (coll,) = ov.collections
    assert coll["alias"] == "ours" and coll["objects"] > 0 and coll["readers"] == ["north"]
    assert [r["action"] for r in ov.sent] == ["share.publish"]
    assert [(r["action"], r["target"]) for r in ov.received] == [("share.import", "south")]


def test_intel_overview_without_feeds(store: Store) -> None:
    ov = intel_overview(store)
    assert ov.advisories == [] and ov.feeds == {"kev": None, "epss": None}
