"""A TAXII 2.1 server over real HTTP (uvicorn on 127.0.0.1, ephemeral port) with two partners."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from healthsec.privacy.pseudonymise import SharingKeys
from healthsec.share.stix import export_bundle
from healthsec.share.stix_sample import sample_alerts, sample_incident
from healthsec.share.taxii_serve import BackgroundServer
from healthsec.share.taxii_server import TaxiiConfig, create_taxii_app
from healthsec.store import Store
from healthsec.store.sharing import Sharing

SECRET = "correct horse battery staple"
KEYS = SharingKeys.from_secret(b"community-key-for-tests-only-32bytes!!")


@dataclass
class Taxii:
    url: str
    root: str
    sharing: Sharing
    ours: str
    inbox: str
    private: str
    exported: int


@pytest.fixture
def taxii(tmp_path: Path) -> Iterator[Taxii]:
    store = Store.open(str(tmp_path / "taxii.db"), "general-hospital")
    sh = Sharing.of(store)
    ours = sh.collections.create("Our indicators", alias="ours", description="published by us")["id"]
    inbox = sh.collections.create("Partner submissions", alias="inbox")["id"]
    private = sh.collections.create("Internal only", alias="private")["id"]
    alerts = sample_alerts(12)
    bundle = export_bundle([sample_incident(alerts)], alerts, producer="General Hospital")
    sh.objects.add_many(ours, bundle["objects"])
    sh.partners.add("stmary", "St Mary Hospital", secret=SECRET, policy={"max_tlp": "amber"})
    sh.partners.grant("stmary", ours, read=True, write=False)
    sh.partners.grant("stmary", inbox, read=True, write=True)
    sh.partners.add("reader", "Regional CERT", secret=SECRET + "-r", policy={"max_tlp": "amber"})
    sh.partners.grant("reader", ours, read=True, write=False)
    app = create_taxii_app(lambda: store, config=TaxiiConfig(max_content_length=200_000), keys=KEYS)
    with BackgroundServer(app) as url:
        yield Taxii(url, f"{url}/taxii2/api/", sh, ours, inbox, private, len(bundle["objects"]))
    store.close()
