"""Pull a partner's collection incrementally with a remembered cursor, survive it being down, push ours."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from healthsec.privacy.pseudonymise import SharingKeys
from healthsec.share.stix import export_bundle
from healthsec.share.stix_sample import sample_alerts, sample_incident
from healthsec.share.taxii_client import pull, pull_all, push, secret_env_var
from healthsec.share.taxii_serve import BackgroundServer
from healthsec.share.taxii_server import create_taxii_app
from healthsec.store import Store
from healthsec.store.sharing import Sharing

KEYS = SharingKeys.from_secret(b"community-key-for-tests-only-32bytes!!")
THEIR_SECRET = "secret we were given by st mary"


def _indicator(n: int) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=n, version=4)}",
        "created": "2026-04-01T00:00:00.000Z",
        "modified": "2026-04-01T00:00:00.000Z",
        "pattern": f"[ipv4-addr:value = '198.51.100.{n % 250}']",
        "pattern_type": "stix",
        "valid_from": "2026-04-01T00:00:00Z",
        "confidence": 80,
    }


def _partner_side(tmp_path: Path) -> tuple[Store, Sharing, str, str]:
    """St Mary's server: a feed we may read and an inbox we may write, for the user 'general'."""
    store = Store.open(str(tmp_path / "stmary.db"), "stmary")
    sh = Sharing.of(store)
    feed = sh.collections.create("St Mary feed")["id"]
    inbox = sh.collections.create("St Mary inbox")["id"]
    sh.partners.add("general", "General Hospital", secret=THEIR_SECRET, policy={"max_tlp": "amber"})
    sh.partners.grant("general", feed, read=True, write=False)
    sh.partners.grant("general", inbox, read=True, write=True)
    return store, sh, feed, inbox


def test_pull_is_incremental_and_survives_a_partner_that_is_down(tmp_path: Path) -> None:
    their_store, theirs, feed, inbox = _partner_side(tmp_path)
    theirs.objects.add_many(feed, [_indicator(i) for i in range(7)])
    ours = Sharing.of(Store.open(str(tmp_path / "general.db"), "general"))
    server = BackgroundServer(create_taxii_app(lambda: their_store, keys=KEYS))
    url = server.start()
    try:
        ours.partners.add(
            "stmary",
            "St Mary",
            url=f"{url}/taxii2/api/",
            remote_collection=feed,
            remote_user="general",
            push_collection=inbox,
        )
        first = pull(ours, "stmary", secret=THEIR_SECRET, page_size=3)
        assert first.error is None
        assert (first.objects, first.added) == (7, 7)
        assert first.cursor is not None
        again = pull(ours, "stmary", secret=THEIR_SECRET, page_size=3)
        assert (again.objects, again.added, again.cursor) == (0, 0, first.cursor)
        theirs.objects.add_many(feed, [_indicator(100), _indicator(101)])
        third = pull(ours, "stmary", secret=THEIR_SECRET)
        assert (third.objects, third.added) == (2, 2)
        inbox_local = ours.collections.get("inbox")
        assert inbox_local is not None
        stored = ours.objects.page(inbox_local["id"], limit=100).items
        assert len(stored) == 9
        assert {o.source for o in stored} == {"stmary"}
        assert {o.confidence for o in stored} == {80}
        wrong = pull(ours, "stmary", secret="wrong")
        assert wrong.error == "HTTP 401 from 127.0.0.1"
    finally:
        server.stop()
    down = pull(ours, "stmary", secret=THEIR_SECRET)
    assert down.error is not None
    assert down.error.startswith("partner unreachable")
    cur = ours.cursors.get("stmary", feed)
    assert cur is not None
    assert cur["added_after"] == third.cursor
    assert cur["last_error"] == down.error
    assert cur["pulled"] == 9
    their_store.close()


def test_pull_all_carries_on_past_a_dead_partner_and_reads_secrets_from_env(
    tmp_path: Path, monkeypatch: Any
) -> None:
    their_store, theirs, feed, _ = _partner_side(tmp_path)
    theirs.objects.add_many(feed, [_indicator(1)])
    ours = Sharing.of(Store.open(str(tmp_path / "general.db"), "general"))
    ours.partners.add("dead", "Closed Clinic", url="http://127.0.0.1:9/taxii2/api/", remote_collection="x")
    with BackgroundServer(create_taxii_app(lambda: their_store, keys=KEYS)) as url:
        ours.partners.add(
            "stmary", "St Mary", url=f"{url}/taxii2/api/", remote_collection=feed, remote_user="general"
        )
        monkeypatch.setenv(secret_env_var("stmary"), THEIR_SECRET)
        results = {r.partner: r for r in pull_all(ours)}
    assert results["dead"].error is not None
    assert results["stmary"].added == 1
    their_store.close()


def test_push_sends_our_new_objects_once_through_the_exit_door(tmp_path: Path) -> None:
    their_store, theirs, _, inbox = _partner_side(tmp_path)
    ours = Sharing.of(Store.open(str(tmp_path / "general.db"), "general"))
    mine = ours.collections.ensure("ours", "Published by us")["id"]
    alerts = sample_alerts(4)
    ours.objects.add_many(
        mine, export_bundle([sample_incident(alerts)], alerts, producer="General")["objects"]
    )
    with BackgroundServer(create_taxii_app(lambda: their_store, keys=KEYS)) as url:
        ours.partners.add(
            "stmary",
            "St Mary",
            url=f"{url}/taxii2/api/",
            remote_collection="unused",
            remote_user="general",
            push_collection=inbox,
            policy={"max_tlp": "amber"},
        )
        first = push(ours, "stmary", secret=THEIR_SECRET, keys=KEYS)
        assert first.error is None
        assert first.objects > 20
        assert theirs.objects.count(inbox) == first.objects
        assert push(ours, "stmary", secret=THEIR_SECRET, keys=KEYS).objects == 0
    received = "".join(o.body for o in theirs.objects.page(inbox, limit=1000).items)
    assert "10.20.0.5" not in received
    assert "MRN-0042-SECRET" not in received
    their_store.close()
