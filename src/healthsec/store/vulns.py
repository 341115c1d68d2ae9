"""Repositories for vulnerabilities and asset profiles; an inventory import is one transaction."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, select

from healthsec.model import Asset
from healthsec.model.assets import AssetProfile
from healthsec.model.codec import to_dict
from healthsec.model.vulns import Vulnerability
from healthsec.store import schema, schema_vulns
from healthsec.store.sql import Store, _dedupe, _upsert


def _vuln_row(org: str, v: Vulnerability) -> dict[str, Any]:
    return {
        "org": org,
        "id": v.id,
        "asset_id": v.asset_id,
        "cve": v.cve,
        "base_score": v.base_score,
        "known_exploited": v.known_exploited,
        "body": dataclasses.asdict(v),
    }


def _profile_row(org: str, p: AssetProfile) -> dict[str, Any]:
    return {"org": org, "asset_id": p.asset_id, "phi_records": p.phi_records, "body": dataclasses.asdict(p)}


def _asset_row(org: str, a: Asset) -> dict[str, Any]:
    # the same row layout as healthsec.store.sql.AssetRepository, so both read each other's rows
    return {
        "org": org,
        "id": a.id,
        "name": a.name,
        "ip": a.ip,
        "zone": a.zone,
        "criticality": int(a.criticality),
        "body": to_dict(a),
    }


@dataclass
class VulnRepository:
    engine: Engine
    org: str

    def upsert_many(self, items: Iterable[Vulnerability]) -> None:
        rows = _dedupe(_vuln_row(self.org, v) for v in items)
        with self.engine.begin() as conn:
            _upsert(conn, schema_vulns.vulnerabilities, rows, ("org", "id"))

    def list(self, asset_id: str | None = None) -> list[Vulnerability]:
        t = schema_vulns.vulnerabilities
        stmt = select(t.c.body).where(t.c.org == self.org)
        if asset_id is not None:
            stmt = stmt.where(t.c.asset_id == asset_id)
        with self.engine.connect() as conn:
            return [Vulnerability(**b) for (b,) in conn.execute(stmt.order_by(t.c.asset_id, t.c.cve))]

    def count(self) -> int:
        t = schema_vulns.vulnerabilities
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(t).where(t.c.org == self.org)).scalar_one()
            )

    def mark_known_exploited(self, cves: set[str]) -> int:
        """Flag stored findings whose CVE is in ``cves`` as known exploited; return how many changed."""
        t = schema_vulns.vulnerabilities
        changed = [
            dataclasses.replace(v, known_exploited=True)
            for v in self.list()
            if v.cve in cves and not v.known_exploited
        ]
        if changed:
            with self.engine.begin() as conn:
                _upsert(conn, t, [_vuln_row(self.org, v) for v in changed], ("org", "id"))
        return len(changed)

    def delete(self, vuln_id: str) -> bool:
        t = schema_vulns.vulnerabilities
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(t).where(t.c.org == self.org, t.c.id == vuln_id)).rowcount)


@dataclass
class ProfileRepository:
    engine: Engine
    org: str

    def list(self) -> list[AssetProfile]:
        t = schema_vulns.asset_profiles
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.body).where(t.c.org == self.org).order_by(t.c.asset_id))
            return [AssetProfile(**b) for (b,) in rows]


def vulns(store: Store) -> VulnRepository:
    return VulnRepository(store.engine, store.org)


def profiles(store: Store) -> ProfileRepository:
    return ProfileRepository(store.engine, store.org)


def import_inventory(
    store: Store, assets: Iterable[Asset], profiles: Iterable[AssetProfile], vulns: Iterable[Vulnerability]
) -> None:
    """Write assets, profiles and vulnerabilities in ONE transaction: all of it or none of it."""
    org = store.org
    asset_rows = _dedupe(_asset_row(org, a) for a in assets)
    vuln_rows = _dedupe(_vuln_row(org, v) for v in vulns)
    prof_rows = list({p.asset_id: _profile_row(org, p) for p in profiles}.values())
    with store.engine.begin() as conn:
        _upsert(conn, schema.assets, asset_rows, ("org", "id"))
        _upsert(conn, schema_vulns.asset_profiles, prof_rows, ("org", "asset_id"))
        _upsert(conn, schema_vulns.vulnerabilities, vuln_rows, ("org", "id"))
