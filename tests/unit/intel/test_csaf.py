"""CSAF 2.0 parsing and schema validation: good documents read whole, bad ones refused with the JSON path
and the rule, a folder with one bad document imports the others."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from healthsec.ingest.intel.csaf import CsafError, advisory_from_doc, parse_csaf, read_csaf_paths


def write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _raw(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def test_shipped_advisory_reads_product_tree_cves_scores_remediations(csaf_doc: dict[str, Any]) -> None:
    adv = parse_csaf(_raw(csaf_doc), "sample.json")
    assert adv.id == "ICSMA-23-047-01"
    (p,) = adv.products
    assert p.vendor == "Becton, Dickinson and Company (BD)"
    assert p.product == "Alaris Infusion Central software"
    assert (p.version, p.version_is_range) == (">= 1.1 | <= 1.3.2", True)
    (v,) = adv.vulns
    assert v.cve == "CVE-2022-47376"
    assert v.cvss_vector == "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:L"
    assert v.base_score == 7.3
    assert v.affected == ("CSAFPID-0001",)
    assert {r.category for r in v.remediations} == {"vendor_fix", "mitigation"}
    assert adv.summary  # an extractive summary exists
    assert all("Recommended" not in t for t, _x in adv.notes)  # template notes dropped


def test_cpe_purl_cvss4_and_threats_are_read(csaf_doc: dict[str, Any]) -> None:
    leaf = csaf_doc["product_tree"]["branches"][0]["branches"][0]["branches"][0]["product"]
    leaf["product_identification_helper"] = {
        "cpe": "cpe:2.3:a:bd:alaris_infusion_central:1.3.2:*:*:*:*:*:*:*",
        "purl": "pkg:generic/bd/alaris-infusion-central@1.3.2",
    }
    vuln = csaf_doc["vulnerabilities"][0]
    vuln["threats"] = [{"category": "exploit_status", "details": "No known public exploitation."}]
    vuln["scores"].append(
        {
            "cvss_v4": {
                "vectorString": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                "baseScore": 9.3,
            },
            "products": ["CSAFPID-0001"],
        }
    )
    adv = advisory_from_doc(csaf_doc)  # v4 scores come in CSAF 2.1; the reader takes them as they are
    assert adv.products[0].cpe.startswith("cpe:2.3:a:bd:")
    assert adv.products[0].purl == "pkg:generic/bd/alaris-infusion-central@1.3.2"
    assert adv.vulns[0].cvss_vector.startswith("CVSS:4.0/")  # v4 preferred over v3
    assert len(adv.vulns[0].cvss_vectors) == 2
    assert adv.vulns[0].threats == (("exploit_status", "No known public exploitation."),)


def test_schema_violation_names_the_json_path_and_the_rule(csaf_doc: dict[str, Any]) -> None:
    del csaf_doc["document"]["tracking"]["id"]
    with pytest.raises(CsafError) as exc:
        parse_csaf(_raw(csaf_doc), "broken.json")
    msg = str(exc.value)
    assert msg.startswith("broken.json: fails the CSAF 2.0 schema")
    assert "$.document.tracking" in msg and "'id' is a required property" in msg and "required" in msg


def test_bad_cvss_vector_in_a_score_is_a_schema_error(csaf_doc: dict[str, Any]) -> None:
    csaf_doc["vulnerabilities"][0]["scores"][0]["cvss_v3"]["vectorString"] = "CVSS:3.1/AV:Q"
    with pytest.raises(CsafError, match=r"\$\.vulnerabilities\[0\]\.scores\[0\]\.cvss_v3"):
        parse_csaf(_raw(csaf_doc), "x.json")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "not a CSAF document"),
        (b'{"document": {"csaf_version": "1.2"}}', "only CSAF 2.0"),
        (b"\x00\x01\x02", "not valid JSON"),
    ],
)
def test_malformed_documents_are_refused_with_the_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(CsafError, match=reason):
        parse_csaf(raw, "bad.json")


def test_a_folder_with_one_bad_document_imports_the_others(tmp_path: Path, csaf_doc: dict[str, Any]) -> None:
    write_json(tmp_path / "good.json", csaf_doc)
    (tmp_path / "sub").mkdir()
    other = json.loads(json.dumps(csaf_doc))
    other["document"]["tracking"]["id"] = "ICSMA-99-001-01"
    write_json(tmp_path / "sub" / "good2.json", other)
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    write_json(tmp_path / "provider-metadata.json", {"distributions": []})  # not an advisory: skipped
    batch = read_csaf_paths([tmp_path, tmp_path / "missing.json"])
    assert sorted(a.id for a in batch.advisories) == ["ICSMA-23-047-01", "ICSMA-99-001-01"]
    assert [e.source for e in batch.errors] == [str(tmp_path / "bad.json"), str(tmp_path / "missing.json")]
    assert "no such file" in batch.errors[1].reason
