"""Vendor normalisation, product similarity, CPE/PURL exact matching, confidence and reasons."""

from __future__ import annotations

from healthsec.analyze.advisories import Advisory, AdvisoryVuln, AffectedProduct
from healthsec.analyze.advisory_match import (
    match_advisories,
    match_product,
    naive_vendor_matches,
    normalise_vendor,
    vendor_similarity,
)
from healthsec.model import Asset


def _asset(aid: str, vendor: str | None, product: str | None, version: str | None = None, **kw: str) -> Asset:
    return Asset(
        id=aid, name=aid, role="device", zone="devices", vendor=vendor, product=product, version=version, **kw
    )


def _adv(aid: str, *products: AffectedProduct) -> Advisory:
    return Advisory(
        id=aid,
        title=aid,
        publisher="CISA",
        initial_release=None,
        current_release="2024-01-01",
        revision="1",
        products=products,
        vulns=(AdvisoryVuln(cve="CVE-2024-0001", affected=tuple(p.product_id for p in products)),),
    )


def test_vendor_normalisation_folds_spelling_suffixes_and_aliases() -> None:
    assert normalise_vendor("Phillips") == normalise_vendor("Philips") == "philips"
    assert normalise_vendor("Becton, Dickinson and Company (BD)") == "becton dickinson"
    assert normalise_vendor("BD") == "becton dickinson"
    assert normalise_vendor("General Electric (GE)") == normalise_vendor("GE Healthcare")
    assert normalise_vendor("Dräger") == normalise_vendor("Draeger") or normalise_vendor("Dräger") == "drager"
    assert normalise_vendor("Hamilton Medical AG") == "hamilton medical"
    assert normalise_vendor(None) == ""


def test_vendor_similarity_is_fuzzy_but_not_loose() -> None:
    score, why = vendor_similarity("Philips Healthcare", "Phillips")
    assert score == 1.0 and "philips" in why
    score, _ = vendor_similarity("Contec", "Contec Health")
    assert score == 0.9
    score, _ = vendor_similarity("Medtronix", "Medtronic")  # a typo still matches, with less confidence
    assert 0.85 <= score < 1.0
    assert vendor_similarity("Siemens", "Philips")[0] == 0.0
    assert vendor_similarity("Smiths Medical", "Natus Medical")[0] == 0.0


def test_version_range_decides_and_reasons_are_given() -> None:
    p = AffectedProduct(
        product_id="P1", vendor="Philips", product="Vue PACS", version="<= 12.2.x.x", version_is_range=True
    )
    conf, method, reasons = match_product(_asset("a", "Philips", "Vue PACS", "12.2.1.0"), p)
    assert (conf, method) == (1.0, "fuzzy")
    assert any("12.2.1.0 is in <= 12.2.x.x" in r for r in reasons)
    conf, _m, reasons = match_product(_asset("b", "Philips", "Vue PACS", "12.3"), p)
    assert conf == 0.0 and "outside" in reasons[-1]


def test_no_version_information_matches_with_low_confidence_and_says_so() -> None:
    p = AffectedProduct(
        product_id="P1", vendor="Contec Health", product="CMS8000 Patient Monitor", version="Model A"
    )
    conf, _m, reasons = match_product(_asset("a", "Contec", "CMS8000 Patient Monitor", "2.0"), p)
    assert 0.5 <= conf < 0.7
    assert "low confidence" in reasons[-1]


def test_model_numbers_must_agree() -> None:
    p = AffectedProduct(
        product_id="P1",
        vendor="Philips",
        product="IntelliVue MX40",
        version="< B.06.18",
        version_is_range=True,
    )
    assert match_product(_asset("a", "Philips", "IntelliVue MX800", "B.06.00"), p)[0] == 0.0
    assert match_product(_asset("b", "Philips", "IntelliVue MX40", "B.06.00"), p)[0] == 1.0


def test_cpe_and_purl_match_exactly_when_both_sides_have_one() -> None:
    p = AffectedProduct(
        product_id="P1",
        vendor="Orthanc",
        product="Orthanc Server",
        version="1.12.0",
        cpe="cpe:2.3:a:orthanc-server:orthanc:1.12.0:*:*:*:*:*:*:*",
    )
    hit = _asset("a", "Someone Else", "x", cpe="cpe:2.3:a:orthanc-server:orthanc:1.12.0:*:*:*:*:*:*:*")
    conf, method, reasons = match_product(hit, p)
    assert (conf, method) == (1.0, "cpe") and "matches" in reasons[0]
    miss = _asset(
        "b",
        "Orthanc",
        "Orthanc Server",
        "1.12.0",
        cpe="cpe:2.3:a:orthanc-server:orthanc:1.11.0:*:*:*:*:*:*:*",
    )
    assert match_product(miss, p)[0] == 0.0  # identifiers on both sides decide: no fuzzy fallback
    q = AffectedProduct(product_id="P2", vendor="x", product="dcmtk", purl="pkg:github/dcmtk/dcmtk@3.6.6")
    assert match_product(_asset("c", None, None, purl="pkg:github/dcmtk/dcmtk@3.6.6"), q)[:2] == (1.0, "purl")
    assert match_product(_asset("d", None, None, purl="pkg:github/dcmtk/dcmtk@3.6.8"), q)[0] == 0.0


def test_match_advisories_keeps_the_best_product_and_beats_a_naive_vendor_match() -> None:
    adv = _adv(
        "ICSMA-X",
        AffectedProduct(
            product_id="P1",
            vendor="Phillips",
            product="IntelliSpace Portal 8.0.x",
            version="vers:all/*",
            version_is_range=True,
        ),
        AffectedProduct(
            product_id="P2",
            vendor="Phillips",
            product="IntelliSpace Portal 7.0.x",
            version="vers:all/*",
            version_is_range=True,
        ),
    )
    assets = [
        _asset("isp-8", "Philips", "IntelliSpace Portal", "8.0.2"),
        _asset("isp-9", "Philips", "IntelliSpace Portal", "9.0"),
        _asset("hue", "Philips", "Hue Bridge", "1.0"),
        _asset("nov", None, None),
    ]
    matches = match_advisories([adv], assets)
    assert [(m.asset_id, m.product_id, m.cves) for m in matches] == [("isp-8", "P1", ("CVE-2024-0001",))]
    # naive: vendor strings compared as they are; "Philips" never equals "Phillips"
    assert naive_vendor_matches([adv], assets) == set()
    assert naive_vendor_matches([adv], [_asset("h", "Phillips", "Hue Bridge")]) == {("h", "ICSMA-X")}
