"""Threat-intelligence store over SQLite and PostgreSQL: advisories keep the newest revision, KEV / EPSS
are replaced only by newer feeds, matching writes findings that risk reads, and removes stale ones."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from healthsec.analyze.advisory_match import AdvisoryMatch
from healthsec.ingest.intel.csaf import advisory_from_doc
from healthsec.ingest.intel.feeds import EpssScores, KevCatalogue, KevEntry
from healthsec.model import Asset
from healthsec.services.intel import match_inventory, match_rows, refresh_findings
from healthsec.store import Store
from healthsec.store.intel import intel
from healthsec.store.vulns import vulns


@pytest.fixture
def doc(shared_data: Path) -> dict[str, Any]:
    return json.loads(
        (shared_data / "cisa-csaf-icsma" / "2021" / "icsma-21-187-01.json").read_text()
    )  # Vue PACS


def test_advisories_round_trip_and_an_older_revision_never_replaces_a_newer(
    store: Store, doc: dict[str, Any]
) -> None:
    repo = intel(store)
    adv = advisory_from_doc(doc)
    assert repo.upsert_advisories([adv]) == (1, 0)
    assert repo.advisory(adv.id) == adv  # nested products, vulns, remediations survive JSON
    older = dataclasses.replace(adv, title="old", current_release="2000-01-01T00:00:00Z")
    assert repo.upsert_advisories([older]) == (0, 1)
    assert repo.advisory(adv.id).title == adv.title  # type: ignore[union-attr]
    assert [a.id for a in repo.advisories()] == [adv.id]


def test_kev_and_epss_are_kept_current_by_date(store: Store) -> None:
    repo = intel(store)
    new = KevCatalogue("2025.08.25", date(2025, 8, 25), {"CVE-2020-1938": KevEntry(cve="CVE-2020-1938")})
    old = KevCatalogue("2024.01.01", date(2024, 1, 1), {"CVE-2017-0144": KevEntry(cve="CVE-2017-0144")})
    assert repo.replace_kev(new) is None
    held = repo.replace_kev(old)
    assert held is not None and held.as_of == "2025-08-25"
    assert set(repo.kev(["CVE-2020-1938", "CVE-2017-0144"])) == {"CVE-2020-1938"}
    assert repo.replace_epss(EpssScores("v1", date(2026, 1, 30), {"CVE-2020-1938": (0.9, 0.99)})) is None
    assert repo.replace_epss(EpssScores("v1", date(2026, 1, 1), {"CVE-2020-1938": (0.1, 0.5)})) is not None
    assert repo.epss(["CVE-2020-1938"]) == {"CVE-2020-1938": 0.9}
    newer = EpssScores("v2", date(2026, 2, 1), {"CVE-2017-0144": (0.5, 0.9)})
    assert repo.replace_epss(newer) is None
    assert repo.epss(["CVE-2020-1938", "CVE-2017-0144"]) == {"CVE-2017-0144": 0.5}  # replaced, not merged
    assert repo.feed_state("epss").entries == 1  # type: ignore[union-attr]


def test_matching_writes_findings_with_kev_and_epss_and_removes_stale_ones(
    store: Store, doc: dict[str, Any]
) -> None:
    repo = intel(store)
    repo.upsert_advisories([advisory_from_doc(doc)])
    repo.replace_kev(KevCatalogue("k", date(2025, 8, 25), {"CVE-2020-1938": KevEntry(cve="CVE-2020-1938")}))
    repo.replace_epss(EpssScores("v", date(2026, 1, 30), {"CVE-2020-1938": (0.945, 0.99)}))
    pacs = Asset(
        id="pacs-01",
        name="pacs-01",
        role="pacs",
        zone="imaging",
        vendor="Philips",
        product="Vue PACS",
        version="12.2.1.0",
    )
    store.assets.upsert_many([pacs, Asset(id="ws", name="ws", role="workstation", zone="clinical")])
    run = match_inventory(store)
    assert [(m.asset_id, m.advisory_id) for m in run.matches] == [("pacs-01", "ICSMA-21-187-01")]
    found = {v.cve: v for v in vulns(store).list("pacs-01")}
    assert run.findings == len(found) > 1
    ghostcat = found["CVE-2020-1938"]
    assert ghostcat.known_exploited is True and ghostcat.epss == 0.945
    assert ghostcat.source == "csaf:ICSMA-21-187-01" and ghostcat.cvss_vector
    row = match_rows(store)[0]
    assert row["kev"] == ["CVE-2020-1938"] and row["epss_max"] == 0.945 and row["reasons"]
    assert isinstance(repo.matches()[0], AdvisoryMatch)
    # the asset is patched: the next run drops the advisory's findings, scanner findings stay
    vulns(store).upsert_many([dataclasses.replace(ghostcat, id="scanner-1", source="nessus")])
    store.assets.upsert_many([dataclasses.replace(pacs, version="12.3")])
    again = match_inventory(store)
    assert again.matches == [] and again.removed == len(found)
    assert [v.source for v in vulns(store).list("pacs-01")] == ["nessus"]
    assert refresh_findings(store) == 0
