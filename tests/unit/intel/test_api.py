"""REST v1 intel routes: matches and advisories, scoped by the caller's organisation."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from healthsec.api.app import create_app
from healthsec.config import load_settings
from healthsec.ingest.intel.csaf import advisory_from_doc
from healthsec.model import Asset
from healthsec.services.intel import match_inventory
from healthsec.store import Store
from healthsec.store.auth import AuthStore
from healthsec.store.intel import intel


def test_matches_and_advisory_routes(tmp_path: Path, shared_data: Path) -> None:
    store = Store.open(str(tmp_path / "hs.db"), "local")
    auth = AuthStore(store.engine)
    for org in ("a", "b"):
        auth.create_org(org)
    token_a = auth.create_token("a", "analyst", "t-a")[1]
    token_b = auth.create_token("b", "analyst", "t-b")[1]
    a = store.for_org("a")
    doc = json.loads((shared_data / "cisa-csaf-icsma/2021/icsma-21-187-01.json").read_text())
    intel(a).upsert_advisories([advisory_from_doc(doc)])
    a.assets.upsert_many(
        [
            Asset(
                id="pacs",
                name="pacs",
                role="pacs",
                zone="imaging",
                vendor="Philips",
                product="Vue PACS",
                version="12.2.1.0",
            )
        ]
    )
    match_inventory(a)
    app = create_app(load_settings(db="sqlite:///unused.db"), store=store)
    with TestClient(app) as client:
        got = client.get("/api/v1/intel/matches", headers={"Authorization": f"Bearer {token_a}"})
        assert got.status_code == 200
        assert [(m["asset"], m["advisory"]) for m in got.json()["items"]] == [("pacs", "ICSMA-21-187-01")]
        other = client.get("/api/v1/intel/matches", headers={"Authorization": f"Bearer {token_b}"})
        assert other.json()["items"] == []  # another organisation sees nothing
        adv = client.get(
            "/api/v1/intel/advisories/ICSMA-21-187-01", headers={"Authorization": f"Bearer {token_a}"}
        )
        assert adv.status_code == 200 and adv.json()["summary"]
        missing = client.get("/api/v1/intel/advisories/NOPE", headers={"Authorization": f"Bearer {token_a}"})
        assert missing.status_code == 404
        assert client.get("/api/v1/intel/matches").status_code == 401
    store.close()
