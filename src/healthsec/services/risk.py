"""Risk and attack-path use cases: assets ranked by risk, likely paths to clinical assets, best fixes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from healthsec.services.common import Invalid, NotFound, Refused

if TYPE_CHECKING:
    from healthsec.analyze.attack import AttackKB
    from healthsec.analyze.paths import AttackPath, Fix, ReachRule
    from healthsec.analyze.risk import AssetRisk, RiskModel
    from healthsec.store import Store

MAX_TOP = 500


@dataclass(frozen=True, slots=True)
class PathsResult:
    """The most likely attack paths (most risky first) and the fixes that cut the most path risk, in order."""

    paths: list[AttackPath]
    fixes: list[Fix]


def risk_model(store: Store) -> RiskModel:
    """The organisation's risk model from its assets, exposure profiles, vulnerabilities and alerts."""
    from healthsec.analyze.risk import RiskModel
    from healthsec.store.aggregates import Aggregates
    from healthsec.store.vulns import profiles, vulns

    # the alerts are counted per asset by the database (one GROUP BY), not loaded: the same figures
    model = RiskModel.build(store.assets.list(), profiles(store).list(), vulns(store).list())
    model.add_alert_kinds(Aggregates(store.engine, store.org).alert_kinds_by_asset(model.asset_keys))
    return model


def incident_risk_model(store: Store) -> RiskModel:
    """A risk model for incident risk only: an incident's risk reads asset impact, never the alert history,
    so the (possibly very many) stored alerts are not loaded."""
    from healthsec.analyze.risk import RiskModel
    from healthsec.store.vulns import profiles, vulns

    return RiskModel.build(store.assets.list(), profiles(store).list(), vulns(store).list(), [])


def rank_assets(store: Store, top: int = 10) -> list[AssetRisk]:
    """The ``top`` riskiest assets (risk = likelihood x impact, 0-100), each with its factors."""
    if not 1 <= top <= 100_000:
        raise Invalid(f"top must be between 1 and 100000, not {top}")
    return risk_model(store).ranking(top)


def read_rules(path: Path) -> list[ReachRule]:
    """Zone reachability rules from a JSON list of ``{"from": ZONE, "to": ZONE, "note": ...}``."""
    import orjson

    from healthsec.analyze.paths import ReachRule

    try:
        data = orjson.loads(path.read_bytes())
        return [ReachRule(str(r["from"]), str(r["to"]), str(r.get("note", ""))) for r in data]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise Invalid(f'{path}: rules must be a JSON list of {{"from": ZONE, "to": ZONE}}: {exc}') from None


def attack_paths(
    store: Store,
    *,
    to: str | None = None,
    top: int = 5,
    fixes: int = 5,
    rules: list[ReachRule] | None = None,
    from_incident: str | None = None,
    kb: AttackKB | None = None,
) -> PathsResult:
    """Most likely paths from entry points (or from the assets an incident holds) to critical assets.

    ``to`` (asset id, name or IP) asks for the ``top`` paths to that one asset; else the best path to
    each critical asset. :class:`NotFound` for an unknown asset or incident.
    """
    from healthsec.analyze.paths import DEFAULT_RULES, AttackGraph
    from healthsec.store.vulns import profiles, vulns

    if not 1 <= top <= MAX_TOP or not 0 <= fixes <= MAX_TOP:
        raise Invalid(f"top must be 1..{MAX_TOP} and fixes 0..{MAX_TOP}, not {top} and {fixes}")
    assets = store.assets.list()
    if not assets:
        return PathsResult([], [])
    graph = AttackGraph(
        assets, profiles(store).list(), vulns(store).list(), list(DEFAULT_RULES) if rules is None else rules
    )
    if from_incident is not None:
        inc = store.incidents.get(from_incident)
        if inc is None:
            raise NotFound("incident", from_incident)
        by_key = {k.lower(): a.id for a in assets for k in (a.id, a.name, a.ip) if k}
        held = {by_key[e.value.lower()] for e in inc.entities if e.value.lower() in by_key}
        if graph.assume_compromised(held, f"incident {inc.id}") == 0:
            raise Refused(f"incident {from_incident!r} names no inventoried asset")
    targets: list[str] | None = None
    if to is not None:
        match = next((a.id for a in assets if to in (a.id, a.name, a.ip)), None)
        if match is None:
            raise NotFound("asset", to)
        targets = [match]
        found = graph.k_paths(match, top)
    else:
        found = graph.best_paths(top=top)
    recs = graph.recommend(fixes, targets, kb=kb) if fixes > 0 and found else []
    return PathsResult(found, recs)
