"""REST v1 model routes: read roles list and show, analysts promote; unknown 404, unfit 409, orgs apart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from healthsec.api import create_app
from healthsec.api.ingest import MemorySink
from healthsec.config import load_settings
from healthsec.pipeline import Detection
from healthsec.store import Store
from healthsec.store.auth import AuthStore
from healthsec.store.models import models
from healthsec.store.schema_models import model_files
from healthsec.testing.artefacts import artefact_of


@pytest.fixture
def api(
    tmp_path: Path, telemetry_files: dict[str, bytes]
) -> Iterator[tuple[TestClient, Store, dict[str, str]]]:
    store = Store.open(str(tmp_path / "api.db"), "north")
    auth = AuthStore(store.engine)
    tokens = {}
    for org in ("north", "south"):
        auth.create_org(org)
        for role in ("admin", "analyst", "auditor", "sensor"):
            tokens[f"{org}-{role}"] = auth.create_token(org, role, f"{role}-{org}")[1]
    repo = models(store)
    for _ in range(3):
        repo.add(artefact_of("telemetry", telemetry_files), telemetry_files)
    settings = load_settings(db="sqlite:///unused.db")
    app = create_app(
        settings, store=store, sink=MemorySink(Detection(store, settings, owner="t", role="api", specs=[]))
    )
    with TestClient(app) as client:
        yield client, store, tokens


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_read_roles_list_and_show(api: tuple[TestClient, Store, dict[str, str]]) -> None:
    client, _, tokens = api
    r = client.get("/api/v1/models", headers=_h(tokens["north-auditor"]))
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["items"]] == ["telemetry-v1", "telemetry-v2", "telemetry-v3"]
    assert "model.txt" in r.json()["items"][0]["files"]  # names and digests, never the bytes
    r = client.get("/api/v1/models/telemetry-v2", headers=_h(tokens["north-analyst"]))
    assert r.status_code == 200 and r.json()["version"] == 2
    assert client.get("/api/v1/models/telemetry-v9", headers=_h(tokens["north-auditor"])).status_code == 404
    assert client.get("/api/v1/models", headers=_h(tokens["north-sensor"])).status_code == 403
    assert client.get("/api/v1/models").status_code == 401
    r = client.get("/api/v1/models", headers=_h(tokens["south-admin"]))
    assert r.json()["items"] == []  # another organisation sees none of them


def test_promote_by_role_with_audit(api: tuple[TestClient, Store, dict[str, str]]) -> None:
    client, store, tokens = api
    url = "/api/v1/models/telemetry/2/promote"
    assert client.post(url, headers=_h(tokens["north-auditor"])).status_code == 403
    r = client.post(url, headers=_h(tokens["north-analyst"]))
    assert r.status_code == 200 and r.json()["status"] == "promoted"
    r = client.post("/api/v1/models/telemetry/3/promote", headers=_h(tokens["north-admin"]))
    assert r.status_code == 200
    r = client.get("/api/v1/models", params={"status": "retired"}, headers=_h(tokens["north-auditor"]))
    assert [m["id"] for m in r.json()["items"]] == ["telemetry-v2"]
    actions = [(e["action"], e["target"]) for e in store.audit.list()]
    assert ("model.promote", "telemetry-v3") in actions and ("model.promote", "telemetry-v2") in actions
    assert (
        client.post("/api/v1/models/telemetry/2/promote", headers=_h(tokens["south-admin"])).status_code
        == 404
    )


def test_promote_unknown_and_unfit(api: tuple[TestClient, Store, dict[str, str]]) -> None:
    client, store, tokens = api
    r = client.post("/api/v1/models/telemetry/42/promote", headers=_h(tokens["north-admin"]))
    assert r.status_code == 404 and "no telemetry model version 42" in r.json()["detail"]
    r = client.post("/api/v1/models/Not Kind/1/promote", headers=_h(tokens["north-admin"]))
    assert r.status_code in (404, 422)
    t = model_files
    with store.engine.begin() as conn:
        conn.execute(
            update(t).where(t.c.artefact_id == "telemetry-v1", t.c.name == "meta.json").values(data=b"{")
        )
    r = client.post("/api/v1/models/telemetry/1/promote", headers=_h(tokens["north-admin"]))
    assert r.status_code == 409
    assert r.json()["detail"].startswith(
        "model artefact telemetry-v1 (telemetry-classifier) refused: file meta.json"
    )
    assert models(store).promoted("telemetry") is None
