"""Vulnerability / profile store contract on SQLite and PostgreSQL: one-transaction inventory import."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import SQLAlchemyError

from healthsec.model import Asset, Criticality
from healthsec.model.assets import AssetProfile
from healthsec.model.vulns import Vulnerability
from healthsec.store import Store
from healthsec.store.vulns import import_inventory, profiles, vulns

VEC = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def test_import_round_trips_and_is_idempotent(store: Store) -> None:
    assets = [
        Asset(
            id="pump-1",
            name="pump-1",
            role="infusion pump",
            zone="medical-devices",
            ip="10.3.0.1",
            criticality=Criticality.LIFE_SUSTAINING,
        ),
        Asset(id="ehr", name="ehr", role="EHR", zone="servers", ip="10.2.0.1"),
    ]
    profs = [AssetProfile(asset_id="ehr", phi_records=120_000, internet_facing=False)]
    vs = [
        Vulnerability.create("pump-1", "CVE-2024-0001", VEC, known_exploited=True, source="scan"),
        Vulnerability.create("ehr", "CVE-2024-0002", None, base_score=5.0),
    ]
    import_inventory(store, assets, profs, vs)
    import_inventory(store, assets, profs, vs)
    assert store.assets.count() == 2
    assert store.assets.by_ip("10.3.0.1").criticality == Criticality.LIFE_SUSTAINING  # type: ignore[union-attr]
    repo = vulns(store)
    assert repo.count() == 2
    got = {v.cve: v for v in repo.list()}
    assert got["CVE-2024-0001"] == vs[0]
    assert got["CVE-2024-0002"].cvss_vector is None
    assert got["CVE-2024-0002"].known_exploited is None
    assert [v.cve for v in repo.list("ehr")] == ["CVE-2024-0002"]
    assert profiles(store).list() == profs
    # another organisation sees nothing
    other = store.for_org(store.org + "-x")
    assert vulns(other).count() == 0
    assert repo.delete(vs[1].id)
    assert repo.count() == 1


def test_failed_import_leaves_nothing_behind(store: Store) -> None:
    good = Asset(id="ok", name="ok", role="pc", zone="corporate")
    bad = Asset(id="bad", name=None, role="pc", zone="corporate")  # type: ignore[arg-type]  # NOT NULL
    with pytest.raises(SQLAlchemyError):
        import_inventory(
            store,
            [good, bad],
            [AssetProfile(asset_id="ok", phi_records=1)],
            [Vulnerability.create("ok", "CVE-2024-1234")],
        )
    assert store.assets.count() == 0
    assert vulns(store).count() == 0
    assert profiles(store).list() == []


def test_mark_known_exploited(store: Store) -> None:
    a = Asset(id="a", name="a", role="pc", zone="corporate")
    import_inventory(
        store,
        [a],
        [],
        [Vulnerability.create("a", "CVE-2024-0001", VEC), Vulnerability.create("a", "CVE-2024-0002", VEC)],
    )
    repo = vulns(store)
    assert repo.mark_known_exploited({"CVE-2024-0002", "CVE-2099-0001"}) == 1
    assert repo.mark_known_exploited({"CVE-2024-0002"}) == 0
    assert {v.cve: v.known_exploited for v in repo.list()} == {"CVE-2024-0001": None, "CVE-2024-0002": True}
