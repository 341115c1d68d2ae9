"""Attack paths: entry points to clinical assets, top-k by likelihood, fixes that cut the most risk."""

from __future__ import annotations

import itertools
import math

import pytest

from healthsec.analyze.attack import AttackKB
from healthsec.analyze.paths import AttackGraph, ReachRule
from healthsec.model import Asset, Criticality
from healthsec.model.assets import AssetProfile
from healthsec.model.vulns import Vulnerability

Hospital = tuple[list[Asset], list[AssetProfile], list[Vulnerability]]


def test_best_paths_lead_from_entry_points_to_clinical_devices(hospital: Hospital) -> None:
    g = AttackGraph(*hospital)
    paths = g.best_paths(top=5)
    assert {p.target for p in paths} == {"pump", "mon"}
    assert paths[0].target == "pump"  # life-sustaining first
    best = paths[0]
    assert best.steps[0].node == "attacker"
    assert best.steps[1].node.startswith("entry:")
    assert best.steps[-1].node == "asset:pump"
    prob = math.prod(s.probability for s in best.steps)
    assert best.likelihood == pytest.approx(prob, rel=1e-4)
    assert best.risk == pytest.approx(best.likelihood * best.impact, rel=1e-4)
    techniques = {s.technique for s in best.steps if s.technique}
    assert techniques & {"T1190", "T1133", "T1566"}


def test_k_paths_are_ordered_and_distinct(hospital: Hospital) -> None:
    g = AttackGraph(*hospital)
    ks = g.k_paths("pump", 4)
    assert len(ks) == 4
    assert [p.likelihood for p in ks] == sorted((p.likelihood for p in ks), reverse=True)
    assert len({p.describe() for p in ks}) == 4
    with pytest.raises(KeyError):
        g.k_paths("nope", 1)


def test_no_rule_no_path() -> None:
    assets = [
        Asset(id="web", name="web", role="portal", zone="dmz"),
        Asset(
            id="pump",
            name="pump",
            role="infusion pump",
            zone="medical-devices",
            criticality=Criticality.LIFE_SUSTAINING,
        ),
    ]
    g = AttackGraph(assets, rules=[ReachRule("dmz", "servers")])
    assert g.targets() == ["pump"]
    assert g.best_paths() == []
    g2 = AttackGraph(assets, rules=[ReachRule("dmz", "Biomed VLAN")])  # zone names are canonicalised
    assert [p.target for p in g2.best_paths()] == ["pump"]


def test_recommended_fixes_cut_risk_in_order(hospital: Hospital, kb: AttackKB) -> None:
    g = AttackGraph(*hospital)
    targets = g.targets()
    before = g.total_risk(targets)
    fixes = g.recommend(max_fixes=3, kb=kb)
    assert fixes
    assert fixes[0].risk_before == pytest.approx(before, abs=1e-4)
    reductions = [f.reduction for f in fixes]
    assert all(r > 0 for r in reductions)
    assert reductions == sorted(reductions, reverse=True)
    for a, b in itertools.pairwise(fixes):
        assert b.risk_before == a.risk_after
    assert all(f.mitigations for f in fixes)
    assert "[ATT&CK: M" in fixes[0].description
    # recommend() leaves the graph as it found it
    assert g.total_risk(targets) == pytest.approx(before)


def test_paths_from_an_incident_and_zone_segmentation() -> None:
    assets = [Asset(id=f"ws{i}", name=f"ws{i}", role="workstation", zone="clinical") for i in range(3)] + [
        Asset(id="srv", name="srv", role="file server", zone="servers"),
        *(
            Asset(
                id=f"pump{i}",
                name=f"pump{i}",
                role="infusion pump",
                zone="medical-devices",
                criticality=Criticality.LIFE_SUSTAINING,
            )
            for i in range(4)
        ),
    ]
    g = AttackGraph(assets)
    assert g.assume_compromised(["ws1", "srv", "not-there"], "incident X") == 2
    paths = g.best_paths(top=4)
    assert len(paths) == 4
    assert all(p.steps[1].label == "incident X" for p in paths)
    assert all(p.likelihood == pytest.approx(0.1) for p in paths)  # one hop from a held host
    fixes = g.recommend(max_fixes=1)
    # blocking clinical->devices alone leaves servers->devices open; segmenting the zone cuts both
    assert fixes[0].target == "isolate:medical-devices"
    assert fixes[0].risk_after == pytest.approx(fixes[0].risk_before * 0.1, rel=1e-3)
