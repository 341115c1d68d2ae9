"""Issue #18 TAXII hardening, one regression test per item with the hostile input of the probe."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from healthsec.privacy.pseudonymise import SharingKeys
from healthsec.share import taxii_auth
from healthsec.share.taxii_auth import Throttle
from healthsec.share.taxii_serve import BackgroundServer
from healthsec.share.taxii_server import TaxiiConfig, create_taxii_app
from healthsec.store import Store
from healthsec.store.sharing import Sharing
from healthsec.testing.hostile_http import MB, Consumed, chunked_send

Taxii = Any  # the fixture object from conftest.py
SECRET = "correct horse battery staple"
TAXII = "application/taxii+json;version=2.1"
KEYS = SharingKeys.from_secret(b"community-key-for-tests-only-32bytes!!")


def _get(url: str, auth: tuple[str, str] | None = ("stmary", SECRET), **kw: Any) -> httpx.Response:
    return httpx.get(url, headers={"Accept": TAXII, **kw.pop("headers", {})}, auth=auth, **kw)


def _post(url: str, *objects: Any, auth: tuple[str, str] = ("stmary", SECRET)) -> httpx.Response:
    body = orjson.dumps({"objects": list(objects)})
    return httpx.post(url, content=body, headers={"Accept": TAXII, "Content-Type": TAXII}, auth=auth)


def _indicator(n: int, modified: str = "2026-04-01T00:00:00.000Z") -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=n, version=4)}",
        "created": "2026-04-01T00:00:00Z",
        "modified": modified,
        "pattern": f"[ipv4-addr:value = '198.51.100.{n}']",
        "pattern_type": "stix",
        "valid_from": "2026-04-01T00:00:00Z",
    }


# (4) impossible timestamps fail per object; versions compare as times
def test_impossible_modified_fails_alone_and_versions_compare_as_times(taxii: Taxii) -> None:
    url = f"{taxii.root}collections/{taxii.inbox}/objects/"
    bad = _indicator(1, modified="2026-13-45T99:99:99Z")
    zero = _indicator(2) | {"created": "0000-01-01T00:00:00Z"}
    resp = _post(url, bad, zero, _indicator(3))
    assert resp.status_code == 202
    status = resp.json()
    assert status["success_count"] == 1
    assert {f["id"] for f in status["failures"]} == {bad["id"], zero["id"]}
    assert all("not a real date and time" in f["message"] for f in status["failures"])
    assert {o.id for o in taxii.sharing.objects.page(taxii.inbox).items} == {_indicator(3)["id"]}
    # as text "...00Z" sorts after "...00.500Z"; as times the .5 s version is the later one
    early, late = _indicator(4, "2026-05-01T00:00:00Z"), _indicator(4, "2026-05-01T00:00:00.500Z")
    assert _post(url, late, early).json()["success_count"] == 2
    got = _get(f"{url}{early['id']}/").json()["objects"]
    assert [o["modified"] for o in got] == ["2026-05-01T00:00:00.500Z"]
    same = _post(url, _indicator(4, "2026-05-01T00:00:00.5Z")).json()  # the same time: the same version
    assert same["success_count"] == 1
    assert taxii.sharing.objects.count(taxii.inbox) == 3


# (1) add-objects authenticates before it reads any body byte, and counts a chunked body as it arrives
def test_add_objects_refuses_chunked_bodies_without_buffering(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "chunked.db"), "general-hospital")
    sh = Sharing.of(store)
    inbox = sh.collections.create("Partner submissions", alias="inbox")["id"]
    sh.partners.add("stmary", "St Mary Hospital", secret=SECRET, policy={"max_tlp": "amber"})
    sh.partners.grant("stmary", inbox, read=True, write=True)
    app = Consumed(create_taxii_app(lambda: store, config=TaxiiConfig(max_content_length=MB), keys=KEYS))
    headers = {"Accept": TAXII, "Content-Type": TAXII}
    with BackgroundServer(app) as url:  # type: ignore[arg-type]
        objects = f"{url}/taxii2/api/collections/{inbox}/objects/"
        status, produced = chunked_send("POST", objects, headers, 200 * MB)
        assert status in (401, None)
        assert app.bytes == 0  # anonymous: refused before a single body byte was read
        assert produced < 64 * MB
        status, produced = chunked_send("POST", objects, headers, 200 * MB, auth=("stmary", SECRET))
        assert status in (413, None)
        assert app.bytes <= 2 * MB  # read up to the limit (plus the chunk that crossed it), no more
        assert produced < 64 * MB
    store.close()


# (5) a status resource is readable by its submitter only
def test_status_of_another_partner_is_not_found(taxii: Taxii) -> None:
    status = _post(f"{taxii.root}collections/{taxii.inbox}/objects/", _indicator(7)).json()
    url = f"{taxii.root}status/{status['id']}/"
    mine = _get(url)
    assert mine.status_code == 200
    assert mine.json()["successes"] == [{"id": _indicator(7)["id"], "version": "2026-04-01T00:00:00.000Z"}]
    assert "x_healthsec_submitter" not in mine.json()
    other = _get(url, auth=("reader", SECRET + "-r"))
    assert other.status_code == 404
    assert "successes" not in other.json()


# (2) NUL characters and out-of-range parameters answer 400 naming the parameter, never 500
@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"match[id]": "\x00"}, "match[id]"),
        ({"match[type]": "indicator\x00"}, "match[type]"),
        ({"next": "99999999999999999999"}, "next"),
        ({"next": "-1"}, "next"),
        ({"added_after": "2026-02-30T00:00:00Z"}, "added_after"),
        ({"added_after": "0000-01-01T00:00:00Z"}, "added_after"),
        ({"match[version]": "2026-02-30T00:00:00Z"}, "match[version]"),
    ],
)
def test_hostile_parameters_answer_400_naming_them(taxii: Taxii, params: dict[str, str], named: str) -> None:
    for path in ("objects/", "manifest/"):
        resp = _get(f"{taxii.root}collections/{taxii.ours}/{path}", params=params)
        assert resp.status_code == 400, (path, params)
        assert named in resp.json()["description"]


def test_nul_in_path_and_partner_name_is_refused_cleanly(taxii: Taxii) -> None:
    base = f"{taxii.root}collections/{taxii.ours}/objects/"
    assert _get(f"{base}indicator--%00/").status_code == 400
    assert _get(f"{taxii.root}collections/%00/objects/").status_code == 400
    assert _get(f"{taxii.root}status/%00/").status_code == 400
    assert _get(base, auth=("st\x00mary", SECRET)).status_code == 401


# (6) equal work for unknown names, back-off after failures
def test_unknown_names_cost_the_same_scrypt_and_failures_back_off(
    taxii: Taxii, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[str] = []
    real = taxii_auth.verify_secret

    def counting(secret: str, stored: str | None) -> bool:
        checks.append(secret)
        return real(secret, stored)

    monkeypatch.setattr(taxii_auth, "verify_secret", counting)
    url = f"{taxii.root}collections/{taxii.ours}/objects/"
    assert _get(url, auth=("stmary", "wrong-1")).status_code == 401
    assert _get(url, auth=("nobody-here", "wrong-2")).status_code == 401
    assert checks == ["wrong-1", "wrong-2"]  # one scrypt check each: known or not, the same work
    for n in range(3, 6):
        assert _get(url, auth=("stmary", f"wrong-{n}")).status_code == 401
    throttled = _get(url, auth=("stmary", SECRET))  # even the right secret waits now
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    assert "objects" not in throttled.json()
    assert len(checks) == 5  # no secret was checked for the throttled request


def test_throttle_is_per_key_doubles_and_forgets() -> None:
    t = Throttle(free=2, base=1.0, cap=8.0, forget=100.0)
    for _ in range(2):
        t.failed("name:a", now=0.0)
    assert t.wait("name:a", now=0.0) == 1.0
    assert t.wait("name:b", now=0.0) == 0.0  # another name is not held back
    for _ in range(5):
        t.failed("name:a", now=0.0)
    assert t.wait("name:a", now=0.0) == 8.0  # doubled per failure, capped
    assert t.wait("name:a", now=200.0) == 0.0  # forgotten after a quiet spell
    t.failed("client:x", now=0.0)
    t.cleared("client:x")
    assert t.wait("client:x", now=0.0) == 0.0


# (12) discovery ignores the Host header; a rotated secret stops working at once
def test_discovery_never_reflects_the_host_header(taxii: Taxii, tmp_path: Path) -> None:
    resp = _get(f"{taxii.url}/taxii2/", headers={"Host": "evil.example"})
    assert resp.status_code == 200
    assert "evil.example" not in resp.text
    assert resp.json()["api_roots"] == ["/taxii2/api/"]
    store = Store.open(str(tmp_path / "public.db"), "h")
    Sharing.of(store).partners.add("p", "P", secret=SECRET)
    cfg = TaxiiConfig(public_url="https://cti.hospital.example/")
    with BackgroundServer(create_taxii_app(lambda: store, config=cfg, keys=KEYS)) as url:
        body = _get(f"{url}/taxii2/", auth=("p", SECRET), headers={"Host": "evil.example"}).json()
    assert body["api_roots"] == ["https://cti.hospital.example/taxii2/api/"]
    assert body["default"] == body["api_roots"][0]
    store.close()


def test_rotated_partner_secret_stops_working_at_once(taxii: Taxii) -> None:
    url = f"{taxii.root}collections/{taxii.ours}/objects/"
    assert _get(url).status_code == 200  # the check is remembered from here on
    taxii.sharing.partners.add(
        "stmary", "St Mary Hospital", secret="a brand new secret", policy={"max_tlp": "amber"}
    )
    assert _get(url).status_code == 401
    assert _get(url, auth=("stmary", "a brand new secret")).status_code == 200
