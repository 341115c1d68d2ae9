"""Sharing use cases over SQLite and PostgreSQL: export through the exit door, publish, partners, DP stats."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from healthsec.privacy.pseudonymise import SharingKeys
from healthsec.services import share as uc
from healthsec.services import share_sync
from healthsec.services.common import Invalid, NotFound, Refused
from healthsec.share.stix_sample import sample_alerts, sample_incident
from healthsec.store import Store

KEYS = SharingKeys.from_secret(bytes.fromhex("5f" * 32))


@pytest.fixture
def sharing(store: Store) -> Store:
    alerts = sample_alerts(4)
    store.alerts.add_many(alerts)
    store.incidents.upsert_many(
        [sample_incident(alerts[:2], id="inc-1"), sample_incident(alerts[2:], id="inc-2")]
    )
    return store


def test_export_refusals_write_nothing(sharing: Store) -> None:
    written: list[bytes] = []
    cases: list[tuple[dict[str, object], type[Exception], str]] = [
        ({"tlp": "red"}, Refused, "TLP:RED never leaves"),
        ({"tlp": "purple"}, Invalid, "unknown TLP level 'purple'"),
        ({"tlp": "amber+strict"}, Invalid, "only to a named organisation"),
        ({"partner": "nobody"}, NotFound, "unknown partner 'nobody'"),
        ({"incident_ids": ["inc-404"]}, NotFound, "no incident 'inc-404'"),
        ({"fmt": "csv"}, Invalid, "stix or misp"),
        ({"internal_networks": ["not-a-net"]}, Invalid, "--internal-net"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            uc.export_incidents(
                sharing,
                KEYS,
                sink=written.append,
                actor="t",
                producer="Hospital A",
                **kwargs,  # type: ignore[arg-type]
            )
    assert written == []
    assert not [r for r in sharing.audit.list() if r["action"] == "share.export"]


def test_export_and_publish(sharing: Store) -> None:
    written: list[bytes] = []
    res = uc.export_incidents(
        sharing, KEYS, sink=written.append, actor="ana", producer="Hospital A", incident_ids=["inc-1"]
    )
    assert (res.recipient, res.fmt, res.tlp, res.incidents) == ("community", "stix", "amber", ["inc-1"])
    bundle = orjson.loads(written[0])
    assert bundle["type"] == "bundle"
    assert len(bundle["objects"]) == res.objects
    pub = uc.publish(sharing, actor="ana", producer="Hospital A", tlp="green")
    assert (pub.collection, pub.incidents) == ("ours", 2)
    assert pub.added > 0
    again = uc.publish(sharing, actor="ana", producer="Hospital A", tlp="green")
    assert (again.added, again.unchanged) == (0, pub.added)


def test_partners_are_checked_and_listed(sharing: Store) -> None:
    with pytest.raises(Invalid, match="unknown policy keys") as err:
        uc.save_partner(sharing, "p1", "St Mary", actor="admin", policy={"colour": "blue"})
    assert err.value.loc == ("policy",)
    with pytest.raises(Invalid, match="name and an organisation"):
        uc.save_partner(sharing, "p1", " ", actor="admin")
    saved = uc.save_partner(
        sharing,
        "p1",
        "St Mary",
        actor="admin",
        secret="s" * 20,
        policy={"max_tlp": "amber"},
        read=["ours"],
        write=["inbox"],
    )
    assert saved["organisation"].startswith("identity--")
    assert saved["has_secret"] is True
    assert "secret" not in saved
    rows = uc.list_partners(sharing)
    assert [(r.partner["name"], r.rights, r.cursor) for r in rows] == [
        ("p1", {"inbox": "w", "ours": "r"}, None)
    ]
    out: list[bytes] = []
    res = uc.export_incidents(sharing, KEYS, sink=out.append, actor="a", producer="H", partner="p1")
    assert res.recipient == "p1"


def test_stats_spend_the_monthly_budget(sharing: Store) -> None:
    out: list[bytes] = []
    now = datetime(2026, 3, 5, tzinfo=UTC)
    first = uc.release_stats(sharing, KEYS, sink=out.append, actor="a", epsilon=0.6, budget=1.0, now=now)
    assert (first.period, first.remaining) == ("2026-03", pytest.approx(0.4))
    doc = orjson.loads(out[0])
    assert doc["epsilon"] == 0.6
    with pytest.raises(Refused, match="privacy budget for 2026-03"):
        uc.release_stats(sharing, KEYS, sink=out.append, actor="a", epsilon=0.6, budget=1.0, now=now)
    assert len(out) == 1
    with pytest.raises(Invalid, match="positive"):
        uc.release_stats(sharing, KEYS, sink=out.append, actor="a", epsilon=0)


def test_a_malformed_partner_bundle_is_quarantined_whole(store: Store) -> None:
    with pytest.raises(share_sync.Quarantined) as err:
        share_sync.import_stix(store, b"{not json", source="partner.json", actor="cli")
    assert err.value.quarantine_id is not None
    assert "partner.json: rejected, nothing stored" in str(err.value)
    assert share_sync.pull(store) == []  # no partner with a URL: nothing to do
    assert share_sync.push(store, KEYS) == []
