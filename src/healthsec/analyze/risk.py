"""Explainable risk per asset and per incident: likelihood x impact (patient safety, PHI, availability)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from healthsec.analyze.inventory import exposure
from healthsec.analyze.vulns import exploit_likelihood
from healthsec.model import Alert, Asset, Criticality, Incident, Severity
from healthsec.model.assets import AssetProfile
from healthsec.model.common import ASSET_KINDS
from healthsec.model.vulns import Vulnerability

# Impact per clinical criticality class (0..1). Life-sustaining and patient-monitoring devices rank highest.
PATIENT_SAFETY: Mapping[Criticality, float] = {
    Criticality.LIFE_SUSTAINING: 1.0,
    Criticality.PATIENT_MONITORING: 0.8,
    Criticality.CLINICAL_SUPPORT: 0.5,
    Criticality.BUSINESS: 0.15,
    Criticality.ADMINISTRATIVE: 0.05,
}
AVAILABILITY: Mapping[Criticality, float] = {
    Criticality.LIFE_SUSTAINING: 1.0,
    Criticality.PATIENT_MONITORING: 0.85,
    Criticality.CLINICAL_SUPPORT: 0.7,
    Criticality.BUSINESS: 0.4,
    Criticality.ADMINISTRATIVE: 0.15,
}
# Likelihood that an alert of this severity means the asset is under active attack.
ALERT_LIKELIHOOD: Mapping[Severity, float] = {
    Severity.INFO: 0.05,
    Severity.LOW: 0.2,
    Severity.MEDIUM: 0.4,
    Severity.HIGH: 0.7,
    Severity.CRITICAL: 0.9,
}
BASE_LIKELIHOOD = 0.02
BREADTH_PER_ASSET = 0.03
BREADTH_CAP = 0.3
EXPOSURE_LIKELIHOOD = {"internet-facing": 0.3, "vendor remote access": 0.2, "phishing-exposed": 0.15}


@dataclass(frozen=True, slots=True)
class RiskWeights:
    """Weights of the impact dimensions (they sum to 1)."""

    patient_safety: float = 0.5
    confidentiality: float = 0.25
    availability: float = 0.25


@dataclass(frozen=True, slots=True)
class Factor:
    """One reason behind a risk figure: which dimension, its value, its weight, and why."""

    name: str
    value: float
    weight: float | None
    detail: str


@dataclass(frozen=True, slots=True)
class AssetRisk:
    asset_id: str
    asset_name: str
    criticality: str
    score: float  # 0..100 = likelihood x impact x 100
    likelihood: float
    impact: float
    impact_factors: tuple[Factor, ...]
    likelihood_factors: tuple[Factor, ...]

    def explain(self) -> str:
        top = max(self.impact_factors, key=lambda f: f.value * (f.weight or 0), default=None)
        why = ", ".join(f.detail for f in self.likelihood_factors[:3]) or "no vulnerability or alert"
        return (
            f"risk {self.score:.1f} = likelihood {self.likelihood:.2f} x impact {self.impact:.2f}; "
            f"impact led by {top.name if top else '-'}; likely because: {why}"
        )


@dataclass(frozen=True, slots=True)
class IncidentRisk:
    incident_id: str
    score: float
    likelihood: float
    impact: float
    assets: tuple[str, ...]
    factors: tuple[Factor, ...]


def _phi_confidentiality(profile: AssetProfile | None, asset: Asset) -> Factor:
    if profile is not None and profile.phi_records is not None:
        # log scale: 10 records ~ 0.17, 1,000 ~ 0.5, 1,000,000 ~ 1.0
        v = min(1.0, math.log10(profile.phi_records + 1) / 6)
        return Factor("confidentiality", round(v, 3), None, f"{profile.phi_records:,} patient records held")
    role = f"{asset.role} {asset.device_type or ''}".lower()
    if any(w in role for w in ("ehr", "emr", "pacs", "his", "database", "lis", "ris", "fhir", "backup")):
        return Factor(
            "confidentiality", 0.8, None, f"PHI volume unknown; role {asset.role!r} holds many records"
        )
    if asset.criticality >= Criticality.CLINICAL_SUPPORT:
        return Factor(
            "confidentiality", 0.3, None, "PHI volume unknown; clinical asset sees some patient data"
        )
    return Factor("confidentiality", 0.1, None, "PHI volume unknown; assumed little patient data")


def asset_impact(
    asset: Asset, profile: AssetProfile | None, weights: RiskWeights
) -> tuple[float, list[Factor]]:
    why = profile.criticality_reason if profile and profile.criticality_reason else "from the inventory"
    crit = asset.criticality.name.lower()
    safety = Factor(
        "patient_safety", PATIENT_SAFETY[asset.criticality], weights.patient_safety, f"{crit} ({why})"
    )
    conf = _phi_confidentiality(profile, asset)
    conf = Factor(conf.name, conf.value, weights.confidentiality, conf.detail)
    avail = Factor("availability", AVAILABILITY[asset.criticality], weights.availability, f"{crit} service")
    factors = [safety, conf, avail]
    impact = sum(f.value * (f.weight or 0.0) for f in factors)
    return round(impact, 4), factors


def exposure_factors(asset: Asset, profile: AssetProfile | None) -> list[Factor]:
    keys = {"internet": "internet-facing", "vendor": "vendor remote access", "phishing": "phishing-exposed"}
    return [
        Factor("exposure", EXPOSURE_LIKELIHOOD[keys[kind]], None, why)
        for kind, (exposed, why) in exposure(asset, profile).items()
        if exposed
    ]


def _combine(ps: Iterable[float]) -> float:
    """Independent chances combined: 1 - prod(1 - p)."""
    q = 1.0
    for p in ps:
        q *= 1.0 - max(0.0, min(1.0, p))
    return 1.0 - q


@dataclass
class RiskModel:
    """Risk of every asset, kept current as vulnerabilities and alerts arrive (no I/O)."""

    assets: dict[str, Asset] = field(default_factory=dict)
    profiles: dict[str, AssetProfile] = field(default_factory=dict)
    vulns: dict[str, dict[str, Vulnerability]] = field(default_factory=lambda: defaultdict(dict))
    alerts: dict[str, dict[str, Alert]] = field(default_factory=lambda: defaultdict(dict))
    # alerts already counted by the store: asset id -> (detector, title) -> (how many, worst severity)
    alert_kinds: dict[str, dict[tuple[str, str], tuple[int, Severity]]] = field(default_factory=dict)
    weights: RiskWeights = field(default_factory=RiskWeights)
    _by_key: dict[str, str] = field(default_factory=dict)
    _cache: dict[str, AssetRisk] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        assets: Iterable[Asset],
        profiles: Iterable[AssetProfile] = (),
        vulns: Iterable[Vulnerability] = (),
        alerts: Iterable[Alert] = (),
        weights: RiskWeights | None = None,
    ) -> RiskModel:
        model = cls(weights=weights or RiskWeights())
        model.add_assets(assets, profiles)
        model.add_vulns(vulns)
        model.add_alerts(alerts)
        return model

    def add_assets(self, assets: Iterable[Asset], profiles: Iterable[AssetProfile] = ()) -> set[str]:
        changed = set()
        for a in assets:
            self.assets[a.id] = a
            changed.add(a.id)
            for key in (a.id, a.name, a.ip):
                if key:
                    self._by_key[key.lower()] = a.id
        for p in profiles:
            self.profiles[p.asset_id] = p
            changed.add(p.asset_id)
        self._invalidate(changed)
        return changed

    def asset_for(self, value: str) -> str | None:
        """The asset an entity value (IP, host name, device id, asset id) names, if any."""
        return self._by_key.get(value.lower())

    @property
    def asset_keys(self) -> dict[str, str]:
        """Every lowercased asset key (id, name, IP) with the asset it names (as :meth:`asset_for` reads)."""
        return dict(self._by_key)

    def add_vulns(self, vulns: Iterable[Vulnerability]) -> set[str]:
        """A new or updated finding changes the risk of its asset only; return the changed assets."""
        changed = set()
        for v in vulns:
            self.vulns[v.asset_id][v.cve] = v
            changed.add(v.asset_id)
        self._invalidate(changed)
        return changed

    def add_alerts(self, alerts: Iterable[Alert]) -> set[str]:
        """An alert raises the likelihood of every inventoried asset it names; return those assets."""
        changed = set()
        for alert in alerts:
            for ent in alert.entities:
                if ent.kind in ASSET_KINDS:
                    aid = self.asset_for(ent.value)
                    if aid is not None:
                        self.alerts[aid][alert.id] = alert
                        changed.add(aid)
        self._invalidate(changed)
        return changed

    def add_alert_kinds(self, kinds: Mapping[str, Mapping[tuple[str, str], tuple[int, int]]]) -> set[str]:
        """Stored alerts as the store counts them per asset: (detector, title) -> (how many, worst severity).

        The same figures as :meth:`add_alerts` over those alerts, without reading them; an alert given both
        ways would count twice, so live alerts (``on_alert``) must be newer than the counts.
        """
        changed = set()
        for aid, groups in kinds.items():
            if aid not in self.assets:
                continue
            mine = self.alert_kinds.setdefault(aid, {})
            for key, (n, sev) in groups.items():
                had_n, had_sev = mine.get(key, (0, Severity.INFO))
                mine[key] = (had_n + n, max(had_sev, Severity(sev)))
            changed.add(aid)
        self._invalidate(changed)
        return changed

    def on_alert(self, alert: Alert) -> None:
        """Bus handler: ``bus.subscribe("alerts", model.on_alert)`` keeps risk current as alerts stream in."""
        self.add_alerts([alert])

    def on_vulnerability(self, vuln: Vulnerability) -> None:
        """Bus handler for new scanner findings."""
        self.add_vulns([vuln])

    def _invalidate(self, ids: Iterable[str]) -> None:
        for i in ids:
            self._cache.pop(i, None)

    def asset_risk(self, asset_id: str) -> AssetRisk:
        cached = self._cache.get(asset_id)
        if cached is not None:
            return cached
        asset = self.assets[asset_id]
        profile = self.profiles.get(asset_id)
        impact, ifactors = asset_impact(asset, profile, self.weights)
        lfactors: list[Factor] = []
        for v in self.vulns.get(asset_id, {}).values():
            p, why = exploit_likelihood(v)
            lfactors.append(Factor("vulnerability", p, None, why))
        lfactors.extend(exposure_factors(asset, profile))
        # repeated alerts of one kind are one piece of evidence (counted), not independent chances
        kinds = dict(self.alert_kinds.get(asset_id, {}))
        for alert in self.alerts.get(asset_id, {}).values():
            n, worst = kinds.get((alert.detector, alert.title), (0, Severity.INFO))
            kinds[(alert.detector, alert.title)] = (n + 1, max(worst, alert.severity))
        for (_det, title), (n, sev) in sorted(kinds.items()):
            times = f"{n} x " if n > 1 else ""
            lfactors.append(
                Factor("alert", ALERT_LIKELIHOOD[sev], None, f"{times}{sev.label} alert: {title}")
            )
        lfactors.sort(key=lambda f: -f.value)
        likelihood = _combine([BASE_LIKELIHOOD, *(f.value for f in lfactors)])
        risk = AssetRisk(
            asset_id=asset_id,
            asset_name=asset.name,
            criticality=asset.criticality.name.lower(),
            score=round(100.0 * likelihood * impact, 2),
            likelihood=round(likelihood, 4),
            impact=impact,
            impact_factors=tuple(ifactors),
            likelihood_factors=tuple(lfactors),
        )
        self._cache[asset_id] = risk
        return risk

    def ranking(self, top: int | None = None) -> list[AssetRisk]:
        ranked = sorted((self.asset_risk(a) for a in self.assets), key=lambda r: (-r.score, r.asset_id))
        return ranked if top is None else ranked[:top]

    def incident_risk(self, incident: Incident) -> IncidentRisk:
        """Likelihood from the incident's severity and kill-chain stages; impact from its worst asset."""
        touched = sorted({aid for e in incident.entities if (aid := self.asset_for(e.value)) is not None})
        sev_p = ALERT_LIKELIHOOD[incident.severity]
        factors = [
            Factor(
                "incident",
                sev_p,
                None,
                f"{incident.severity.label} incident, {len(incident.alert_ids)} alerts",
            )
        ]
        if incident.tactics:
            factors.append(
                Factor("kill_chain", len(incident.tactics), None, "tactics: " + ", ".join(incident.tactics))
            )
        if touched:
            worst = max((self.asset_risk(a) for a in touched), key=lambda r: r.impact)
            impact = worst.impact
            factors.append(
                Factor("impact", impact, None, f"worst asset {worst.asset_name} ({worst.criticality})")
            )
            if len(touched) > 1:
                # an attack across many assets (ransomware on a ward) does more harm than on one
                extra = min(BREADTH_CAP, BREADTH_PER_ASSET * (len(touched) - 1))
                impact = min(1.0, impact + extra)
                factors.append(
                    Factor("breadth", round(extra, 3), None, f"{len(touched)} inventoried assets involved")
                )
        else:
            impact = 0.3
            factors.append(Factor("impact", impact, None, "no inventoried asset named; assumed 0.3"))
        # more kill-chain stages seen = further along, more likely to do harm
        likelihood = _combine([sev_p, 0.05 * max(0, len(incident.tactics) - 1)])
        return IncidentRisk(
            incident_id=incident.id,
            score=round(100.0 * likelihood * impact, 2),
            likelihood=round(likelihood, 4),
            impact=round(impact, 4),
            assets=tuple(touched),
            factors=tuple(factors),
        )
