"""Imported CSAF advisories published as STIX (report + CVE vulnerability objects) into a TAXII collection
and read by a partner through the TAXII server's exit door, the same path incidents take."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from healthsec.privacy.pseudonymise import SharingKeys
from healthsec.services.common import Refused
from healthsec.services.intel import import_csaf, publish_advisories
from healthsec.share.stix import advisory_bundle, validate_bundle
from healthsec.share.taxii_server import create_taxii_app
from healthsec.store import Store
from healthsec.store.intel import intel
from healthsec.store.sharing import Sharing

TAXII = "application/taxii+json;version=2.1"
SECRET = "correct horse battery staple"
FILES = ("2023/icsma-23-047-01.json", "2021/icsma-21-187-01.json")


def test_nothing_to_publish_is_refused(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "hs.db"), "local")
    with pytest.raises(Refused, match="no advisory"):
        publish_advisories(store, actor="t", producer="General Hospital")
    assert Sharing.of(store).collections.get("advisories") is None
    store.close()


def test_bundle_is_valid_stix_with_one_vulnerability_per_cve(shared_data: Path) -> None:
    from healthsec.ingest.intel.csaf import read_csaf_paths

    advisories = read_csaf_paths([shared_data / "cisa-csaf-icsma" / f for f in FILES]).advisories
    bundle = advisory_bundle(advisories, producer="General Hospital")
    assert validate_bundle(bundle) == []
    cves = {v.cve for a in advisories for v in a.vulns if v.cve}
    vulns = [o for o in bundle["objects"] if o["type"] == "vulnerability"]
    assert {o["name"] for o in vulns} == cves and len(vulns) == len(cves)
    reports = {
        o["external_references"][0]["external_id"]: o for o in bundle["objects"] if o["type"] == "report"
    }
    assert set(reports) == {a.id for a in advisories}
    for o in reports.values():
        assert o["report_types"] == ["vulnerability"]
        assert all(ref.startswith("vulnerability--") for ref in o["object_refs"])
    assert all(
        m == "TLP:CLEAR"
        for m in (o.get("name") for o in bundle["objects"] if o["type"] == "marking-definition")
    )


def test_partner_reads_published_advisories_through_taxii(tmp_path: Path, shared_data: Path) -> None:
    store = Store.open(str(tmp_path / "hs.db"), "local")
    res = import_csaf(store, [str(shared_data / "cisa-csaf-icsma" / f) for f in FILES])
    assert res.stored == 2 and not res.errors
    pub = publish_advisories(store, actor="t", producer="General Hospital")
    assert pub.advisories == 2 and pub.added > 0
    again = publish_advisories(store, actor="t", producer="General Hospital")
    assert again.added == 0 and again.duplicates == pub.added  # same ids: nothing new for partners
    sh = Sharing.of(store)
    sh.partners.add("stmary", "St Mary Hospital", secret=SECRET, policy={"max_tlp": "amber"})
    sh.partners.add("other", "Other", secret=SECRET + "-o", policy={"max_tlp": "amber"})
    sh.partners.grant("stmary", pub.collection_id, read=True, write=False)
    keys = SharingKeys.from_secret(b"community-key-for-tests-only-32bytes!!")
    app = create_taxii_app(lambda: store, keys=keys)
    url = f"/taxii2/api/collections/{pub.collection_id}/objects/"
    with TestClient(app) as client:
        denied = client.get(url, headers={"Accept": TAXII}, auth=("other", SECRET + "-o"))
        assert denied.status_code in (403, 404)
        got = client.get(url, headers={"Accept": TAXII}, auth=("stmary", SECRET))
    assert got.status_code == 200, got.text
    objects = got.json()["objects"]
    cves = {v.cve for a in intel(store).advisories() for v in a.vulns if v.cve}
    served = {o["name"] for o in objects if o["type"] == "vulnerability"}
    assert served == cves
    names = [o["name"] for o in objects if o["type"] == "report"]
    assert sorted(n.split(":")[0] for n in names) == ["ICSMA-21-187-01", "ICSMA-23-047-01"]
    store.close()
