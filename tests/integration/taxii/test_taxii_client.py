"""The OASIS taxii2-client against our TAXII 2.1 server: discovery, collections, add, status, paging."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import requests
from taxii2client.v21 import ApiRoot, Collection, Server, Status, as_pages

from healthsec.privacy.pseudonymise import SharingKeys
from healthsec.share.stix_sample import sample_alerts
from healthsec.share.taxii_serve import BackgroundServer
from healthsec.share.taxii_server import create_taxii_app
from healthsec.store import Store
from healthsec.store.sharing import Sharing

Taxii = Any  # the fixture object from conftest.py
SECRET = "correct horse battery staple"


def _indicator(n: int) -> dict[str, object]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=n, version=4)}",
        "created": "2026-04-01T00:00:00.000Z",
        "modified": "2026-04-01T00:00:00.000Z",
        "pattern": f"[ipv4-addr:value = '198.51.100.{n % 250}']",
        "pattern_type": "stix",
        "valid_from": "2026-04-01T00:00:00Z",
        "confidence": 60,
    }


def _served_id(coll: Collection, n: int) -> str:
    """The id under which this reader is served ``_indicator(n)`` (ids are re-keyed per reader)."""
    objs = coll.get_objects(limit=1000)["objects"]
    return next(str(o["id"]) for o in objs if o.get("pattern") == _indicator(n)["pattern"])


def test_discovery_api_root_and_collections(taxii: Taxii) -> None:
    server = Server(f"{taxii.url}/taxii2/", user="stmary", password=SECRET)
    assert server.title == "healthsec TAXII 2.1"
    assert [r.url for r in server.api_roots] == [taxii.root]
    root = server.default
    assert root is not None
    assert "application/taxii+json;version=2.1" in root.versions
    cols = {c.id: c for c in root.collections}
    assert set(cols) == {taxii.ours, taxii.inbox}  # the private collection is not even listed
    assert cols[taxii.ours].can_read
    assert not cols[taxii.ours].can_write
    assert cols[taxii.inbox].can_write


def test_add_objects_poll_status_and_read_back(taxii: Taxii) -> None:
    inbox = Collection(f"{taxii.root}collections/{taxii.inbox}/", user="stmary", password=SECRET)
    status = inbox.add_objects({"objects": [_indicator(i) for i in range(5)]}, wait_for_completion=False)
    assert status.status == "complete"
    assert status.success_count == 5
    assert status.failure_count == 0
    polled = Status(f"{taxii.root}status/{status.id}/", user="stmary", password=SECRET)
    polled.refresh()
    assert polled.success_count == 5
    assert {s["id"] for s in polled.successes} == {str(_indicator(i)["id"]) for i in range(5)}
    again = inbox.add_objects({"objects": [_indicator(1)]})  # same id and version: accepted, not duplicated
    assert again.success_count == 1
    assert taxii.sharing.objects.count(taxii.inbox) == 5
    stored = taxii.sharing.objects.page(taxii.inbox).items
    assert {o.source for o in stored} == {"stmary"}
    got = inbox.get_objects()
    assert len(got["objects"]) == 5
    assert got["more"] is False


def test_pages_with_filters_are_complete_and_stable_while_adding(taxii: Taxii) -> None:
    ours = Collection(f"{taxii.root}collections/{taxii.ours}/", user="reader", password=SECRET + "-r")
    seen: list[str] = []
    for n, envelope in enumerate(as_pages(ours.get_objects, per_request=4, type="indicator")):
        assert all(o["type"] == "indicator" for o in envelope["objects"])
        seen += [o["id"] for o in envelope["objects"]]
        if n == 1:  # a partner adds more while we page: nothing seen twice, nothing earlier skipped
            taxii.sharing.objects.add_many(taxii.ours, [_indicator(1000 + i) for i in range(3)])
    assert len(seen) == len(set(seen))
    # 12 alerts give 12 IP and 7 file indicators, plus the 3 added while paging
    assert len(seen) == 12 + 7 + 3
    # the exit door re-keys ids, so the partner sees no id that is a hash of a raw identifier
    all_ids = {o.id for o in taxii.sharing.objects.page(taxii.ours, limit=1000).items}
    assert not (set(seen) & all_ids - {str(_indicator(1000 + i)["id"]) for i in range(3)})


def test_added_after_and_headers_drive_an_incremental_pull(taxii: Taxii) -> None:
    url = f"{taxii.root}collections/{taxii.ours}/objects/"
    headers = {"Accept": "application/taxii+json;version=2.1"}
    raw = httpx.get(url, params={"limit": 1000}, headers=headers, auth=("stmary", SECRET))
    assert raw.status_code == 200
    last = raw.headers["X-TAXII-Date-Added-Last"]
    assert raw.headers["X-TAXII-Date-Added-First"] <= last
    assert raw.headers["Content-Type"].replace(" ", "") == "application/taxii+json;version=2.1"
    assert len(raw.json()["objects"]) > 20
    ours = Collection(f"{taxii.root}collections/{taxii.ours}/", user="stmary", password=SECRET)
    assert ours.get_objects(added_after=last)["objects"] == []
    taxii.sharing.objects.add_many(taxii.ours, [_indicator(7)])
    newer = ours.get_objects(added_after=last)["objects"]
    assert [o["pattern"] for o in newer] == ["[ipv4-addr:value = '198.51.100.7']"]


def test_manifest_versions_and_served_content_is_pseudonymised(taxii: Taxii) -> None:
    ours = Collection(f"{taxii.root}collections/{taxii.ours}/", user="stmary", password=SECRET)
    manifest = ours.get_manifest(limit=5)
    assert len(manifest["objects"]) == 5
    assert manifest["more"] is True
    assert all(m["media_type"] == "application/stix+json;version=2.1" for m in manifest["objects"])
    taxii.sharing.objects.add_many(
        taxii.ours, [_indicator(3), _indicator(3) | {"modified": "2026-05-01T00:00:00.000Z"}]
    )
    versions = ours.object_versions(_served_id(ours, 3))
    assert versions["versions"] == ["2026-04-01T00:00:00.000Z", "2026-05-01T00:00:00.000Z"]
    text = orjson.dumps(ours.get_objects(limit=1000)).decode()
    assert "10.20.0.5" not in text  # the internal target address went through Crypto-PAn
    assert "MRN-0042-SECRET" not in text


def test_api_root_object_reads_by_id(taxii: Taxii) -> None:
    root = ApiRoot(taxii.root, user="stmary", password=SECRET)
    assert root.max_content_length == 200_000
    taxii.sharing.objects.add_many(taxii.inbox, [_indicator(9)])
    inbox = Collection(f"{taxii.root}collections/{taxii.inbox}/", user="stmary", password=SECRET)
    got = inbox.get_object(_served_id(inbox, 9))
    assert len(got["objects"]) == 1
    # our object's stored id is not how this reader knows it: asking by it finds nothing
    with pytest.raises(requests.HTTPError, match="404"):
        inbox.get_object(str(_indicator(9)["id"]))


def test_delete_needs_write_and_removes_every_version(taxii: Taxii) -> None:
    taxii.sharing.objects.add_many(
        taxii.inbox, [_indicator(4), _indicator(4) | {"modified": "2026-06-01T00:00:00.000Z"}]
    )
    inbox = Collection(f"{taxii.root}collections/{taxii.inbox}/", user="stmary", password=SECRET)
    inbox.delete_object(_served_id(inbox, 4))
    assert taxii.sharing.objects.count(taxii.inbox) == 0


def test_identifiers_our_alerts_name_are_tokenised_in_responses(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "leak.db"), "h")
    store.alerts.add_many(sample_alerts(2))  # they name the user dr.jones and patient MRN-0042-SECRET
    sh = Sharing.of(store)
    cid = sh.collections.create("c")["id"]
    note = _indicator(5) | {"description": "seen on the laptop of dr.jones while opening MRN-0042-SECRET"}
    sh.objects.add_many(cid, [note])
    sh.partners.add("p", "P", secret=SECRET, policy={"max_tlp": "amber"})
    sh.partners.grant("p", cid, read=True, write=False)
    keys = SharingKeys.from_secret(b"community-key-for-tests-only-32bytes!!")
    with BackgroundServer(create_taxii_app(lambda: store, keys=keys)) as url:
        got = Collection(f"{url}/taxii2/api/collections/{cid}/", user="p", password=SECRET).get_objects()
    store.close()
    text = orjson.dumps(got).decode()
    assert len(got["objects"]) == 1
    assert "dr.jones" not in text
    assert "MRN-0042-SECRET" not in text
    assert "seen on the laptop of user-" in text  # the keyed token stands in for the user
