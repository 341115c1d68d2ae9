"""Hostile requests get 401/403/404/406/413/415 and never data; a bad object of an envelope fails alone."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from taxii2client.v21 import Collection, as_pages

from healthsec.share.taxii_serve import BackgroundServer
from healthsec.share.taxii_server import create_taxii_app
from healthsec.store import Store
from healthsec.store.sharing import Sharing

Taxii = Any  # the fixture object from conftest.py
SECRET = "correct horse battery staple"
TAXII = "application/taxii+json;version=2.1"


def _get(url: str, **kw: Any) -> httpx.Response:
    kw.setdefault("headers", {"Accept": TAXII})
    return httpx.get(url, **kw)


def _post(
    url: str, body: bytes, ctype: str = TAXII, auth: tuple[str, str] = ("stmary", SECRET)
) -> httpx.Response:
    return httpx.post(url, content=body, headers={"Accept": TAXII, "Content-Type": ctype}, auth=auth)


def _envelope(*objects: Any) -> bytes:
    return orjson.dumps({"objects": list(objects)})


def _indicator(n: int, **over: Any) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=n, version=4)}",
        "created": "2026-04-01T00:00:00.000Z",
        "modified": "2026-04-01T00:00:00.000Z",
        "pattern": "[ipv4-addr:value = '198.51.100.1']",
        "pattern_type": "stix",
        "valid_from": "2026-04-01T00:00:00Z",
    } | over


def test_wrong_or_missing_credentials_get_401_and_no_data(taxii: Taxii) -> None:
    url = f"{taxii.root}collections/{taxii.ours}/objects/"
    for auth in (None, ("stmary", "wrong"), ("nobody", SECRET), ("", "")):
        resp = _get(url, auth=auth)
        assert resp.status_code == 401, auth
        assert resp.headers["WWW-Authenticate"] == "Basic"
        assert "objects" not in resp.json()
    garbled = _get(url, headers={"Accept": TAXII, "Authorization": "Basic !!!notbase64"})
    assert garbled.status_code == 401
    assert _get(f"{taxii.url}/taxii2/", auth=("stmary", "nope")).status_code == 401


def test_missing_rights_get_403_and_unknown_collections_404(taxii: Taxii) -> None:
    private = f"{taxii.root}collections/{taxii.private}/objects/"
    assert _get(private, auth=("stmary", SECRET)).status_code == 403
    assert _get(f"{taxii.root}collections/{taxii.private}/", auth=("stmary", SECRET)).status_code == 403
    ro = _post(f"{taxii.root}collections/{taxii.ours}/objects/", _envelope(_indicator(1)))
    assert ro.status_code == 403
    reader = _post(
        f"{taxii.root}collections/{taxii.inbox}/objects/",
        _envelope(_indicator(1)),
        auth=("reader", SECRET + "-r"),
    )
    assert reader.status_code == 403
    assert _get(f"{taxii.root}collections/nope/objects/", auth=("stmary", SECRET)).status_code == 404
    assert taxii.sharing.objects.count(taxii.inbox) == 0


def test_wrong_media_types_get_406_and_415(taxii: Taxii) -> None:
    url = f"{taxii.root}collections/{taxii.ours}/objects/"
    bad_accept = _get(url, auth=("stmary", SECRET), headers={"Accept": "application/json"})
    assert bad_accept.status_code == 406
    assert "objects" not in bad_accept.json()
    old = _get(url, auth=("stmary", SECRET), headers={"Accept": "application/taxii+json;version=2.0"})
    assert old.status_code == 406
    bad_ctype = _post(
        f"{taxii.root}collections/{taxii.inbox}/objects/", _envelope(_indicator(1)), "application/json"
    )
    assert bad_ctype.status_code == 415
    assert taxii.sharing.objects.count(taxii.inbox) == 0


def test_bad_query_parameters_get_400(taxii: Taxii) -> None:
    url = f"{taxii.root}collections/{taxii.ours}/objects/"
    for params in (
        {"added_after": "yesterday"},
        {"limit": "-1"},
        {"next": "abc"},
        {"match[version]": "soon"},
    ):
        assert _get(url, auth=("stmary", SECRET), params=params).status_code == 400, params


def test_hostile_envelopes_and_objects_fail_alone(taxii: Taxii) -> None:
    url = f"{taxii.root}collections/{taxii.inbox}/objects/"
    assert _post(url, b'{"objects": [').status_code == 400
    assert _post(url, b"[]").status_code == 400
    assert _post(url, b" " * 200_001).status_code == 413
    custom = {
        "type": "x-evil",
        "id": f"x-evil--{uuid.uuid4()}",
        "spec_version": "2.1",
        "created": "2026-04-01T00:00:00Z",
        "modified": "2026-04-01T00:00:00Z",
    }
    resp = _post(url, _envelope(_indicator(1), _indicator(2, spec_version="2.0"), custom))
    assert resp.status_code == 202
    status = resp.json()
    # TAXII 2.1 section 4.4: each bad object fails alone with its reason, the good one is stored
    assert status["success_count"] == 1
    assert [s["id"] for s in status["successes"]] == [_indicator(1)["id"]]
    assert status["failure_count"] == 2
    assert "object 2" in status["failures"][0]["message"]
    assert "only STIX 2.1" in status["failures"][0]["message"]
    assert status["failures"][1]["id"] == custom["id"]
    assert "unknown custom object type" in status["failures"][1]["message"]
    assert taxii.sharing.objects.count(taxii.inbox) == 1
    reasons = [q["reason"] for q in taxii.sharing.quarantine.list()]
    assert any("only STIX 2.1" in r for r in reasons)
    assert any(r.startswith("malformed JSON") for r in reasons)


def test_sightings_on_later_pages_keep_their_indicator(taxii: Taxii) -> None:
    ours = Collection(f"{taxii.root}collections/{taxii.ours}/", user="stmary", password=SECRET)
    whole = ours.get_objects(limit=1000)["objects"]
    paged = [o for env in as_pages(ours.get_objects, per_request=3) for o in env["objects"]]
    assert [o["id"] for o in paged] == [o["id"] for o in whole]
    assert sum(o["type"] == "sighting" for o in paged) == 12


def test_without_sharing_keys_nothing_is_served(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "nokeys.db"), "h")
    sh = Sharing.of(store)
    cid = sh.collections.create("c")["id"]
    sh.objects.add_many(cid, [_indicator(1)])
    sh.partners.add("p", "P", secret=SECRET)
    sh.partners.grant("p", cid, read=True, write=False)
    with BackgroundServer(create_taxii_app(lambda: store, keys=None)) as url:
        resp = _get(f"{url}/taxii2/api/collections/{cid}/objects/", auth=("p", SECRET))
    store.close()
    assert resp.status_code == 503
    assert "objects" not in resp.json()
