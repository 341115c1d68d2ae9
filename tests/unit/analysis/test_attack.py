"""ATT&CK knowledge: the shipped copy, id resolution, kill-chain order, mitigations, healthcare actors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from healthsec.analyze.attack import AttackKB, enrich_alert
from healthsec.analyze.attack_build import BuildError, build_domain
from healthsec.ingest.attack_data import (
    SHIPPED,
    AttackDataError,
    build_document,
    load_document,
    save_document,
    update_document,
)


def test_shipped_copy_is_small_and_complete(kb: AttackKB) -> None:
    assert SHIPPED.stat().st_size < 3_000_000
    stats = kb.stats()
    # v18.1: 691 active Enterprise techniques (475 sub-techniques) + 83 active ICS techniques
    assert stats["sub_techniques"] == 475
    assert stats["techniques"] + stats["sub_techniques"] == 691 + 83
    assert stats["tactics"] == 14 + 12
    assert kb.technique("T1059.001") is not None
    assert kb.technique("T1059.001").name == "PowerShell"  # type: ignore[union-attr]


def test_sigma_tags_revoked_ids_and_v19_fallback(kb: AttackKB) -> None:
    assert kb.resolve("attack.t1059.001") == "T1059.001"
    assert kb.resolve("T1566.999") == "T1566"  # unknown sub-technique falls back to its parent
    assert kb.resolve("T1685") is None  # ATT&CK v19 id the pinned v18.1 lacks
    assert kb.resolve("not-a-technique") is None
    # a revoked technique follows its replacement
    revoked = next(iter(kb.doc["domains"]["enterprise-attack"]["revoked"].items()))
    assert kb.resolve(revoked[0]) == kb.resolve(revoked[1])
    # Sigma's own tactic tags fill in for unknown technique ids
    assert kb.tactics_for(["T1685"], fallback=["attack.defense_evasion"]) == ("defense-evasion",)
    # v19 tactic tags the pinned v18.1 copy lacks keep the rule placed (they were Defense Evasion)
    for tag in ("TA0112", "attack.defense-impairment", "attack.stealth"):
        assert kb.tactics_for(["T1685"], fallback=[tag]) == ("defense-evasion",), tag
    assert kb.tactics_for(["T1686.003"], fallback=["TA0112", "attack.execution"]) == (
        "execution",
        "defense-evasion",
    )
    assert kb.tactics_for(["T1486"], fallback=["attack.discovery"]) == ("impact",)


def test_kill_chain_order_spans_enterprise_and_ics(kb: AttackKB) -> None:
    chain = kb.kill_chain()
    assert chain[0] == "reconnaissance"
    assert chain[-1] == "impact"
    assert chain.index("initial-access") < chain.index("lateral-movement") < chain.index("exfiltration")
    assert chain.index("inhibit-response-function") < chain.index("impact")
    assert kb.tactic_rank("TA0001") == kb.tactic_rank("Initial Access") == kb.tactic_rank("initial_access")
    assert kb.tactic_rank("no-such-tactic") is None
    t0855 = kb.technique("T0855")
    assert t0855 is not None
    assert t0855.domain == "ics-attack"


def test_mitigations_data_components_and_healthcare_groups(kb: AttackKB) -> None:
    mits = {m.id for m in kb.mitigations_for("T1486")}
    assert "M1053" in mits  # Data Backup mitigates Data Encrypted for Impact
    assert kb.mitigation("M1030") is not None
    assert kb.mitigation("M1030").name == "Network Segmentation"
    assert "Process Creation" in kb.technique("T1059.001").data_components  # type: ignore[union-attr]
    actors = {a.name: a for a in kb.healthcare_actors()}
    assert actors["WIZARD SPIDER"].attack_group == "G0102"
    assert "Healthcare" in actors["WIZARD SPIDER"].evidence
    assert "TA505" in kb.healthcare_groups_using("T1486")
    assert "WIZARD SPIDER" in kb.healthcare_groups_using("T1059.001")


def test_build_from_ics_bundle_and_update_keeps_other_domains(shared_data: Path, tmp_path: Path) -> None:
    ics = shared_data / "mitre-attack-stix" / "ics-attack-18.1-stix2.1.json.gz"
    doc = build_document([ics], None)
    assert list(doc["domains"]) == ["ics-attack"]
    part = doc["domains"]["ics-attack"]
    assert len(part["techniques"]) == 83
    assert [t["shortname"] for t in part["tactics"]][:2] == ["initial-access", "execution"]
    current = load_document(SHIPPED)
    merged = update_document(current, [ics], None)
    assert set(merged["domains"]) == {"enterprise-attack", "ics-attack"}
    assert merged["healthcare_actors"] == current["healthcare_actors"]
    out = tmp_path / "a.json.gz"
    save_document(merged, out)
    kb = AttackKB(load_document(out))
    assert kb.technique("T1190") is not None
    assert kb.technique("T0883") is not None


def test_bad_bundles_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="not a STIX bundle"):
        build_domain({"type": "nope"})
    bad = tmp_path / "broken.json.gz"
    bad.write_bytes(gzip.compress(b"{not json"))
    with pytest.raises(AttackDataError, match=r"broken\.json\.gz: not valid JSON"):
        build_document([bad], None)
    other = tmp_path / "bundle.json"
    other.write_text(
        json.dumps({"type": "bundle", "id": "bundle--x", "objects": [{"type": "indicator", "id": "i"}]})
    )
    with pytest.raises(AttackDataError, match=r"bundle\.json: .*not ATT&CK data"):
        build_document([other], None)
    with pytest.raises(AttackDataError, match="not a healthsec ATT&CK copy"):
        load_document(other)


def test_enrich_alert_fills_tactics_and_keeps_unknown_ids(kb: AttackKB) -> None:
    from datetime import UTC, datetime

    from healthsec.model import Alert, Severity

    a = Alert(
        id="a",
        ts=datetime(2026, 3, 1, tzinfo=UTC),
        detector="sigma",
        detector_version="1",
        title="t",
        score=1.0,
        severity=Severity.HIGH,
        explanation="rule matched",
        techniques=("attack.t1003.001", "attack.t1486"),
    )
    e = enrich_alert(a, kb)
    assert e.techniques == ("T1003.001", "T1486")
    assert e.tactics == ("credential-access", "impact")
    v19 = enrich_alert(
        Alert(
            id="b",
            ts=a.ts,
            detector="sigma",
            detector_version="1",
            title="t",
            score=1.0,
            severity=Severity.LOW,
            explanation="x",
            techniques=("T1685",),
            tactics=("attack.defense_evasion",),
        ),
        kb,
    )
    assert v19.techniques == ("T1685",)
    assert v19.tactics == ("defense-evasion",)


def test_healthcare_groups_matching_an_incident(kb: AttackKB) -> None:
    ransomware = ["T1566.001", "T1059.001", "T1003.001", "T1021.002", "T1569.002", "T1490", "T1486"]
    leads = dict(kb.healthcare_groups_matching(ransomware, top=10))
    assert leads["WIZARD SPIDER"] >= 5
    assert all(n <= len(ransomware) for n in leads.values())
    assert kb.healthcare_groups_matching(["T1685"]) == []  # unknown ids match nobody
