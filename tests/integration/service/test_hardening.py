"""Issue #18 part 2, REST items: one regression test per item with the probe's hostile input."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from service_helpers import World, flow, make_tenant

from healthsec.api import create_app
from healthsec.api.app import _sharing_keys
from healthsec.config import load_settings
from healthsec.share.keys import load_keys
from healthsec.share.taxii_serve import BackgroundServer
from healthsec.store import Store
from healthsec.store import auth as auth_module
from healthsec.store.auth import AuthStore
from healthsec.testing.hostile_http import MB, Consumed, chunked_send

pytestmark = pytest.mark.integration


# (1) a chunked 200 MB body is never buffered: anonymous 401 before any byte, authenticated 413 at the limit
def test_chunked_bodies_are_refused_without_buffering(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "chunked.db"), "chunked")
    tenant = make_tenant(store, "chunked-a")
    limit = 1 * MB
    app = Consumed(create_app(load_settings(db="sqlite:///unused.db", max_body_bytes=limit), store=store))
    with BackgroundServer(app) as url:  # type: ignore[arg-type]
        status, produced = chunked_send("PUT", f"{url}/api/v1/assets", {}, 200 * MB)
        assert status in (401, None)
        assert app.bytes == 0  # the token is checked before the body is read at all
        assert produced < 64 * MB  # the client was stopped long before 200 MB
        status, produced = chunked_send("PUT", f"{url}/api/v1/assets", tenant.headers("analyst"), 200 * MB)
        assert status in (413, None)
        assert app.bytes <= limit + MB  # read up to the limit (plus the chunk that crossed it), no more
        assert produced < 64 * MB
    store.close()


# (2) NUL and control characters: 400/422 naming the parameter, on SQLite and PostgreSQL alike
def test_control_characters_are_refused_naming_the_parameter(world: World) -> None:
    c, admin = world.client, world.a.headers("admin")
    r = c.get("/api/v1/alerts?detector=%00", headers=admin)
    assert r.status_code == 400
    assert r.json()["detail"][0]["loc"] == ["query", "detector"]
    assert "U+0000" in r.json()["detail"][0]["msg"]
    r = c.get("/api/v1/incidents/%00", headers=admin)
    assert (r.status_code, r.json()["detail"][0]["loc"]) == (400, ["path"])
    r = c.post("/api/v1/tokens", json={"name": "evil\u0000name", "role": "analyst"}, headers=admin)
    assert (r.status_code, r.json()["detail"][0]["loc"]) == (422, ["body", "name"])
    r = c.post("/api/v1/tokens", json={"name": "two\nlines", "role": "analyst"}, headers=admin)
    assert r.status_code == 422  # names are one line
    put = {"organisation": "General\u0000Hospital", "secret": "s" * 20}
    r = c.put("/api/v1/partners/general", json=put, headers=admin)
    assert (r.status_code, r.json()["detail"][0]["loc"]) == (422, ["body", "organisation"])
    r = c.put("/api/v1/partners/gen%00eral", json={**put, "organisation": "General"}, headers=admin)
    assert r.status_code == 400
    note = {"text": "isolated the PACS\nline two\ttab"}  # free text keeps newlines and tabs
    r = c.post(f"/api/v1/incidents/{world.seeded_a['incident']}/comments", json=note, headers=admin)
    assert r.status_code == 201
    r = c.post(
        f"/api/v1/incidents/{world.seeded_a['incident']}/comments", json={"text": "a\u0000"}, headers=admin
    )
    assert r.status_code == 422


# (2) declared limits: a poison event is refused by name (422, not a 503 "retry" for the whole batch)
def test_poison_events_are_refused_per_record(world: World) -> None:
    c, sensor = world.client, world.a.headers("sensor")
    batch = [
        flow(1),
        {**flow(2), "id": "x" * 10_000},
        {**flow(3), "source": "s" * 129},
        {**flow(4), "id": "a\u0000"},
    ]
    r = c.post("/api/v1/events", json={"events": batch}, headers=sensor)
    assert r.status_code == 422
    locs = [e["loc"] for e in r.json()["detail"]]
    assert locs == [["body", "events", 1, "id"], ["body", "events", 2, "source"], ["body", "events", 3, "id"]]
    assert "x" * 100 not in r.text  # nothing echoed
    nested = {**flow(5), "features": {"note": "bad\u0000value"}}
    r = c.post("/api/v1/events", json={"events": [nested]}, headers=sensor)
    assert r.json()["detail"][0]["loc"] == ["body", "events", 0, "features", "note"]
    r = c.post("/api/v1/events", json={"events": [flow(1), flow(6)]}, headers=sensor)
    assert r.status_code == 202  # the sensor drops the named records and the rest goes in


# (3) a database error: one log line, no statement values, no traceback, a bare 503 "retry" (#19: a
# database error is answered as the database being unavailable, never 500)
def test_database_errors_log_one_line_without_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store.open(str(tmp_path / "dberror.db"), "dberror")
    assert store.engine.hide_parameters
    tenant = make_tenant(store, "dberror-a")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE audit")  # every audited write now fails inside the database
    client = TestClient(create_app(load_settings(db="sqlite:///unused.db"), store=store))
    with caplog.at_level(logging.DEBUG):
        r = client.post(
            "/api/v1/tokens",
            json={"name": "DOE JANE MRN0042", "role": "analyst"},
            headers=tenant.headers("admin"),
        )
    assert r.status_code == 503
    assert r.json() == {"detail": "database unavailable; retry"}
    assert "MRN0042" not in caplog.text
    assert "Traceback" not in caplog.text
    assert "INSERT" not in caplog.text
    lines = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.WARNING]
    assert len(lines) == 1 and "database" in lines[0], lines
    store.close()


# (6) wrong REST tokens back off per client and per token id; unknown ids cost the same hash
def test_wrong_tokens_are_throttled_and_unknown_ids_do_equal_work(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = world.client
    hashed: list[str] = []
    real_hash = auth_module._hash
    monkeypatch.setattr(auth_module, "_hash", lambda secret: hashed.append(secret) or real_hash(secret))
    token_id = world.a.tokens["analyst"].split(".")[0]
    wrong = {"Authorization": f"Bearer {token_id}.{'w' * 43}"}
    unknown = {"Authorization": f"Bearer hst_{'0' * 16}.{'w' * 43}"}
    assert c.get("/api/v1/alerts", headers=unknown).status_code == 401
    assert c.get("/api/v1/alerts", headers=wrong).status_code == 401
    assert len(hashed) == 2  # the unknown id was hashed and compared like a known one
    statuses = [c.get("/api/v1/alerts", headers=wrong).status_code for _ in range(6)]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[-1] == 429
    r = c.get("/api/v1/alerts", headers=world.a.headers("analyst"))
    assert r.status_code == 429  # this client and this token id now wait, even with the right secret
    assert int(r.headers["retry-after"]) >= 1
    checked = len(hashed)
    c.get("/api/v1/alerts", headers=unknown)
    assert len(hashed) == checked  # while throttled no secret is checked at all


# (7) a 422 never echoes the input
def test_validation_errors_do_not_echo_input(world: World) -> None:
    c, admin = world.client, world.a.headers("admin")
    body = {"name": "ok", "role": "DOE JANE MRN0042 " + "x" * 40_000}
    r = c.post("/api/v1/tokens", json=body, headers=admin)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "role"]
    assert "MRN0042" not in r.text
    assert len(r.content) < 2_000
    assert all(set(e) == {"loc", "msg", "type"} for e in r.json()["detail"])


# (8) partner records validated at write time; a partner token lists itself only
def test_partner_records_are_validated_and_scoped(world: World) -> None:
    c, admin = world.client, world.a.headers("admin")
    base = {"organisation": "General Hospital", "secret": "s" * 20}
    for url in ("file:///etc/passwd", "http://cti.example.org/taxii2/", "gopher://x", "https://"):
        r = c.put("/api/v1/partners/general", json={**base, "url": url}, headers=admin)
        assert (r.status_code, r.json()["detail"][0]["loc"]) == (422, ["body", "url"]), url
    # the policy's published schema (PartnerPolicyIn) is enforced: the error names the key
    bad_policies = {
        "surprise": {"max_tlp": "green", "surprise": 1},
        "anonymous": {"anonymous": "false"},
        "min_confidence": {"min_confidence": 500},
        "max_tlp": {"max_tlp": "red"},
        "allowed_types": {"allowed_types": "indicator"},
    }
    for key, policy in bad_policies.items():
        r = c.put("/api/v1/partners/general", json={**base, "policy": policy}, headers=admin)
        assert (r.status_code, r.json()["detail"][0]["loc"][:3]) == (422, ["body", "policy", key]), policy
    ok = {**base, "url": "https://cti.general.example/taxii2/", "policy": {"max_tlp": "amber"}}
    assert c.put("/api/v1/partners/general", json=ok, headers=admin).status_code == 200
    local = {**base, "url": "http://127.0.0.1:9000/taxii2/"}  # loopback may be plain http
    assert c.put("/api/v1/partners/local", json=local, headers=admin).status_code == 200
    _, token = AuthStore(world.store.engine).create_token(world.a.org, "partner", "general")
    mine = c.get("/api/v1/partners", headers={"Authorization": f"Bearer {token}"}).json()["items"]
    assert [p["name"] for p in mine] == ["general"]
    assert {p["name"] for p in c.get("/api/v1/partners", headers=admin).json()["items"]} == {
        "general",
        "local",
    }


# (12) headers, banner, docs pages, Allow on 405
def test_security_headers_banner_docs_and_allow(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "headers.db"), "headers")
    tenant = make_tenant(store, "headers-a")
    app = create_app(load_settings(db="sqlite:///unused.db"), store=store)
    with BackgroundServer(app) as url:
        for path, headers in (("/healthz", {}), ("/api/v1/alerts", tenant.headers("analyst")), ("/nope", {})):
            r = httpx.get(url + path, headers=headers, timeout=120)
            assert r.headers["x-content-type-options"] == "nosniff", path
            assert r.headers["cache-control"] == "no-store", path
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
            assert "server" not in r.headers, path
        assert (
            httpx.get(url + "/docs", timeout=120).status_code == 404
        )  # no page pulling scripts from a CDN by default
        assert httpx.get(url + "/redoc", timeout=120).status_code == 404
        assert httpx.get(url + "/openapi.json", timeout=120).status_code == 200
        r = httpx.delete(url + "/api/v1/tokens", headers=tenant.headers("admin"), timeout=120)
        assert r.status_code == 405
        assert r.headers["allow"] == "GET, POST"
    docs = create_app(load_settings(db="sqlite:///unused.db", api_docs=True), store=store)
    assert TestClient(docs).get("/docs").status_code == 200
    store.close()


# (12) files the CLI writes are 0600 in 0700 folders; one key file, one sharing key in serve and share
def test_files_are_private_and_one_key_file_gives_one_key(tmp_path: Path) -> None:
    db = tmp_path / "new-folder" / "store.db"
    db.parent.mkdir(mode=0o700)  # (#19) the CLI never creates a missing --db folder itself
    env = {k: v for k, v in os.environ.items() if k != "HEALTHSEC_DB"}
    subprocess.run(
        [sys.executable, "-m", "healthsec.cli", "admin", "create-org", "hospital", "--db", str(db)],
        check=True,
        env=env,
        capture_output=True,
    )
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    for extra in db.parent.iterdir():  # WAL and shared-memory files too
        assert stat.S_IMODE(extra.stat().st_mode) & 0o077 == 0, extra.name
    key_file = tmp_path / "community.key"
    key_file.write_text("ab" * 32 + "\n")  # hex, as `openssl rand -hex 32` writes it
    served = _sharing_keys(load_settings(db="sqlite:///unused.db", sharing_secret_file=key_file))
    assert served == load_keys(key_file)
