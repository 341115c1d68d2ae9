"""Risk: likelihood x impact, patient safety first, explainable, updated as alerts and CVEs arrive."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from healthsec.analyze.risk import RiskModel
from healthsec.model import Alert, Asset, Criticality, Entity, EntityKind, Incident, Severity
from healthsec.model.assets import AssetProfile
from healthsec.model.vulns import Vulnerability

Hospital = tuple[list[Asset], list[AssetProfile], list[Vulnerability]]
VEC = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def test_same_vulnerability_hurts_a_life_sustaining_device_most() -> None:
    assets = [
        Asset(id=n, name=n, role=r, zone="clinical", criticality=c)
        for n, r, c in [
            ("pump", "infusion pump", Criticality.LIFE_SUSTAINING),
            ("mon", "monitor", Criticality.PATIENT_MONITORING),
            ("pc", "workstation", Criticality.BUSINESS),
            ("prn", "printer", Criticality.ADMINISTRATIVE),
        ]
    ]
    vulns = [Vulnerability.create(a.id, "CVE-2024-1000", VEC) for a in assets]
    ranked = RiskModel.build(assets, vulns=vulns).ranking()
    assert [r.asset_id for r in ranked] == ["pump", "mon", "pc", "prn"]
    top = ranked[0]
    assert {f.name for f in top.impact_factors} == {"patient_safety", "confidentiality", "availability"}
    assert sum(f.weight or 0 for f in top.impact_factors) == 1.0
    assert top.likelihood_factors[0].name == "vulnerability"
    assert "CVE-2024-1000" in top.explain()
    assert top.score == round(100 * top.likelihood * top.impact, 2)


def test_phi_volume_drives_confidentiality(hospital: Hospital) -> None:
    assets, profiles, _ = hospital
    model = RiskModel.build(assets, profiles)
    ehr = {f.name: f for f in model.asset_risk("ehr").impact_factors}
    pc = {f.name: f for f in model.asset_risk("ws1").impact_factors}
    assert ehr["confidentiality"].value > 0.85
    assert "250,000 patient records" in ehr["confidentiality"].detail
    assert "unknown" in pc["confidentiality"].detail


def test_risk_updates_when_alert_or_vulnerability_arrives(
    hospital: Hospital, make_alert: Callable[..., Alert]
) -> None:
    assets, profiles, _ = hospital
    model = RiskModel.build(assets, profiles)
    before = model.asset_risk("mon").score
    changed = model.add_alerts([make_alert("a1", "10.3.0.12", Severity.HIGH)])
    assert changed == {"mon"}
    after_alert = model.asset_risk("mon").score
    assert after_alert > before
    assert any(f.name == "alert" for f in model.asset_risk("mon").likelihood_factors)
    kev = Vulnerability.create("mon", "CVE-2024-7777", VEC, known_exploited=True)
    assert model.add_vulns([kev]) == {"mon"}
    assert model.asset_risk("mon").score > after_alert
    assert model.add_alerts([make_alert("a2", "192.0.2.1")]) == set()  # not an inventoried asset


def test_incident_risk_takes_worst_asset_and_kill_chain(hospital: Hospital) -> None:
    assets, profiles, vulns = hospital
    model = RiskModel.build(assets, profiles, vulns)
    ts = datetime(2026, 3, 1, tzinfo=UTC)

    def incident(ip: str, tactics: tuple[str, ...]) -> Incident:
        return Incident(
            id=f"inc-{ip}",
            title="t",
            first_seen=ts,
            last_seen=ts,
            severity=Severity.HIGH,
            score=0.8,
            alert_ids=("x",),
            entities=(Entity(EntityKind.IP, ip),),
            tactics=tactics,
        )

    pump = model.incident_risk(incident("10.3.0.7", ("initial-access", "lateral-movement", "impact")))
    printer = model.incident_risk(incident("10.1.0.99", ("initial-access",)))
    assert pump.assets == ("pump",)
    assert pump.score > printer.score
    assert pump.impact > printer.impact
    assert pump.likelihood > printer.likelihood
    unknown = model.incident_risk(incident("192.0.2.9", ()))
    assert unknown.assets == ()
    assert "assumed" in unknown.factors[-1].detail


def test_incident_across_many_assets_weighs_more(hospital: Hospital) -> None:
    assets, profiles, vulns = hospital
    model = RiskModel.build(assets, profiles, vulns)
    ts = datetime(2026, 3, 1, tzinfo=UTC)
    one = Incident(
        id="one",
        title="t",
        first_seen=ts,
        last_seen=ts,
        severity=Severity.HIGH,
        score=0.8,
        alert_ids=("x",),
        entities=(Entity(EntityKind.IP, "10.1.0.11"),),
    )
    many = Incident(
        id="many",
        title="t",
        first_seen=ts,
        last_seen=ts,
        severity=Severity.HIGH,
        score=0.8,
        alert_ids=("x",),
        entities=tuple(Entity(EntityKind.IP, ip) for ip in ("10.1.0.11", "10.1.0.99", "10.0.0.5")),
    )
    r1, r3 = model.incident_risk(one), model.incident_risk(many)
    assert r3.impact == round(r1.impact + 0.06, 4)
    assert any(f.name == "breadth" and "3 inventoried assets" in f.detail for f in r3.factors)


def test_risk_follows_the_alert_stream_on_the_bus(
    hospital: Hospital, make_alert: Callable[..., Alert]
) -> None:
    from healthsec.bus import InProcessBus

    assets, profiles, _ = hospital
    model = RiskModel.build(assets, profiles)
    bus = InProcessBus()
    bus.subscribe("alerts", model.on_alert)
    bus.subscribe("vulns", model.on_vulnerability)
    before = model.asset_risk("pump").score
    bus.publish("alerts", make_alert("a9", "10.3.0.7", Severity.CRITICAL))
    bus.drain()
    mid = model.asset_risk("pump").score
    assert mid > before
    bus.publish("vulns", Vulnerability.create("pump", "CVE-2024-5555", VEC, known_exploited=True))
    bus.drain()
    assert model.asset_risk("pump").score > mid
    assert model.ranking(1)[0].asset_id == "pump"


def test_inventory_flags_win_over_exposure_defaults() -> None:
    from healthsec.analyze.inventory import exposure

    web = Asset(id="w", name="w", role="web server", zone="DMZ")
    vpn = Asset(id="v", name="v", role="vpn gateway", zone="dmz")
    assert exposure(web, None)["internet"] == (True, "internet-facing (DMZ)")
    assert exposure(web, AssetProfile(asset_id="w", internet_facing=False))["internet"] == (
        False,
        "internet-facing (no in the inventory)",
    )
    assert exposure(vpn, None)["vendor"][0] is True
    model = RiskModel.build([web], [AssetProfile(asset_id="w", internet_facing=False)])
    assert model.asset_risk("w").likelihood_factors == ()
