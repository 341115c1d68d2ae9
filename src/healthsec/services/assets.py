"""Asset use cases: import an inventory or scan, list, show with risk, flag known-exploited CVEs, discover."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from healthsec.model import Asset
from healthsec.services.common import Invalid, NotFound, Page, Refused, check_paging
from healthsec.services.risk import risk_model

if TYPE_CHECKING:
    from healthsec.analyze.inventory import AssetProfile
    from healthsec.analyze.risk import AssetRisk
    from healthsec.analyze.vulns import Vulnerability
    from healthsec.store import Store

MAX_ASSETS = 10_000


@dataclass(frozen=True, slots=True)
class InventoryImported:
    file: str
    rows: int
    assets: int
    vulnerabilities: int
    ignored_columns: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AssetDetail:
    asset: Asset
    profile: AssetProfile | None
    vulnerabilities: list[Vulnerability]
    risk: AssetRisk


@dataclass(frozen=True, slots=True)
class KevResult:
    catalogue_cves: int
    findings_flagged: int


def parse_column_map(items: list[str]) -> dict[str, str]:
    """``COLUMN=FIELD`` pairs for columns the importer does not recognise."""
    out: dict[str, str] = {}
    for item in items:
        col, sep, name = item.partition("=")
        if not sep:
            raise Invalid(f"--map wants COLUMN=FIELD, got {item!r}")
        out[col] = name.strip()
    return out


def import_inventory(
    store: Store,
    path: Path,
    *,
    column_map: Mapping[str, str] | None = None,
    ignore: tuple[str, ...] = (),
    source: str = "inventory",
    actor: str,
) -> InventoryImported:
    """Import assets (and CVE findings) in one transaction; any bad row means nothing is written.

    :class:`Invalid` carries every problem (file, row, reason) in ``problems``.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from healthsec.ingest.inventory import overlay_existing, read_inventory
    from healthsec.store.vulns import import_inventory as write_inventory
    from healthsec.store.vulns import profiles

    if not path.is_file():
        raise NotFound("file", str(path))
    res = read_inventory(path, column_map=dict(column_map or {}), ignore=ignore, source=source)
    if res.errors:
        raise Invalid(
            f"{len(res.errors)} problem(s) in {path.name}; nothing was imported",
            [e.describe() for e in res.errors],
        )
    res = overlay_existing(res, store.assets.list(), profiles(store).list())
    try:
        write_inventory(store, res.assets, res.profiles, res.vulns)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise Refused(f"the database refused {path.name} ({reason}); nothing was imported") from None
    store.audit.record(actor, "assets.import", path.name, assets=len(res.assets), vulns=len(res.vulns))
    return InventoryImported(path.name, res.rows, len(res.assets), len(res.vulns), list(res.ignored))


def list_assets(
    store: Store, *, limit: int = 100_000, offset: int = 0, with_total: bool = False
) -> Page[Asset]:
    """The inventory, most critical first."""
    check_paging(limit, offset)
    assets = sorted(store.assets.list(), key=lambda a: (-int(a.criticality), a.id))
    return Page(assets[offset : offset + limit], limit, offset, len(assets) if with_total else None)


def asset_detail(store: Store, key: str) -> AssetDetail:
    """One asset (by id, name or IP): what the inventory says, its vulnerabilities, its risk and factors."""
    from healthsec.store.vulns import vulns

    model = risk_model(store)
    aid = model.asset_for(key)
    if aid is None:
        raise NotFound("asset", key)
    return AssetDetail(
        model.assets[aid], model.profiles.get(aid), vulns(store).list(aid), model.asset_risk(aid)
    )


@dataclass(frozen=True, slots=True)
class InventoryRow:
    """One asset as the inventory view lists it: its risk and its findings, worst first."""

    asset: Asset
    risk: AssetRisk
    vulnerabilities: list[Vulnerability]
    patient_connected: bool

    @property
    def max_cvss(self) -> float | None:
        return max((v.base_score for v in self.vulnerabilities if v.base_score is not None), default=None)

    @property
    def known_exploited(self) -> int:
        return sum(1 for v in self.vulnerabilities if v.known_exploited)


def inventory(store: Store) -> list[InventoryRow]:
    """Every asset with its risk, findings (highest CVSS first) and whether it is patient-connected;
    riskiest first. One risk model for the whole inventory (no query per asset)."""
    from healthsec.respond.containment import patient_connected

    model = risk_model(store)
    rows = [
        InventoryRow(
            a,
            model.asset_risk(aid),
            sorted(model.vulns.get(aid, {}).values(), key=lambda v: (-(v.base_score or 0.0), v.cve)),
            patient_connected(a),
        )
        for aid, a in model.assets.items()
    ]
    rows.sort(key=lambda r: (-r.risk.score, -int(r.asset.criticality), r.asset.name))
    return rows


def flag_known_exploited(store: Store, path: Path, *, actor: str) -> KevResult:
    """Flag stored findings whose CVE is in a known-exploited catalogue (CISA KEV JSON, JSON list, CSV)."""
    from healthsec.ingest.inventory import read_kev
    from healthsec.store.vulns import vulns

    if not path.is_file():
        raise NotFound("file", str(path))
    cves, errors = read_kev(path)
    if errors:
        raise Invalid(
            f"{len(errors)} problem(s) in {path.name}; nothing was changed", [e.describe() for e in errors]
        )
    changed = vulns(store).mark_known_exploited(cves)
    store.audit.record(actor, "assets.kev", path.name, cves=len(cves), flagged=changed)
    return KevResult(len(cves), changed)


def discover_assets(store: Store, *, actor: str) -> list[Asset]:
    """Add assets that alerts name but the inventory lacks (zone 'unknown' until placed)."""
    from healthsec.analyze.inventory import discover_from_alerts

    found = discover_from_alerts(store.alerts.all(), store.assets.list())
    store.assets.upsert_many(found)
    store.audit.record(actor, "assets.discover", None, count=len(found))
    return found


def upsert_assets(store: Store, raw: Sequence[Mapping[str, Any]], *, actor: str) -> list[Asset]:
    """Add or replace assets given as the codec's dicts; one bad record stores nothing and is named."""
    from healthsec.model.codec import asset_from_dict

    if len(raw) > MAX_ASSETS:
        raise Invalid(f"at most {MAX_ASSETS} assets per call, not {len(raw)}")
    parsed: list[Asset] = []
    for index, item in enumerate(raw):
        try:
            parsed.append(asset_from_dict(item))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise Invalid(f"{type(exc).__name__}: {exc}", loc=("assets", index)) from None
    store.assets.upsert_many(parsed)
    store.audit.record(actor, "assets.upsert", None, count=len(parsed), ids=[a.id for a in parsed][:100])
    return parsed
