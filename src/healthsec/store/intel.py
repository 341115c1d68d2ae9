"""Repository for threat intelligence: advisories, KEV / EPSS kept current by date, advisory matches."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, select

from healthsec.analyze.advisories import Advisory, AdvisoryVuln, AffectedProduct, Remediation
from healthsec.analyze.advisory_match import AdvisoryMatch
from healthsec.ingest.intel.feeds import EpssScores, KevCatalogue, KevEntry
from healthsec.model import stable_id
from healthsec.store import schema_intel as t
from healthsec.store.sql import Store, _upsert

_BATCH = 5000


def advisory_from_dict(d: Mapping[str, Any]) -> Advisory:
    vulns = tuple(
        AdvisoryVuln(
            **{
                **v,
                "cvss_vectors": tuple(v.get("cvss_vectors") or ()),
                "affected": tuple(v.get("affected") or ()),
                "fixed": tuple(v.get("fixed") or ()),
                "remediations": tuple(
                    Remediation(**{**r, "product_ids": tuple(r.get("product_ids") or ())})
                    for r in v.get("remediations") or ()
                ),
                "threats": tuple(tuple(x) for x in v.get("threats") or ()),
            }
        )
        for v in d.get("vulns") or ()
    )
    return Advisory(
        **{
            **d,
            "products": tuple(AffectedProduct(**p) for p in d.get("products") or ()),
            "vulns": vulns,
            "notes": tuple(tuple(n) for n in d.get("notes") or ()),
        }
    )


@dataclass(frozen=True, slots=True)
class FeedState:
    feed: str
    version: str | None
    as_of: str
    entries: int


@dataclass
class IntelRepository:
    engine: Engine
    org: str

    # ---- advisories ----
    def upsert_advisories(self, items: Iterable[Advisory]) -> tuple[int, int]:
        """Store advisories; an older revision never replaces a newer one. Returns (stored, kept older)."""
        items = list({a.id: a for a in items}.values())
        current = {a: c for a, c in self._releases([a.id for a in items]).items()}
        rows, skipped = [], 0
        for a in items:
            held = current.get(a.id)
            if held and a.current_release and held > a.current_release:
                skipped += 1
                continue
            rows.append(
                {
                    "org": self.org,
                    "id": a.id,
                    "title": a.title[:512],
                    "current_release": a.current_release,
                    "body": dataclasses.asdict(a),
                }
            )
        with self.engine.begin() as conn:
            _upsert(conn, t.intel_advisories, rows, ("org", "id"))
        return len(rows), skipped

    def _releases(self, ids: list[str]) -> dict[str, str | None]:
        tab = t.intel_advisories
        out: dict[str, str | None] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                stmt = select(tab.c.id, tab.c.current_release).where(
                    tab.c.org == self.org, tab.c.id.in_(ids[i : i + 500])
                )
                out.update({r[0]: r[1] for r in conn.execute(stmt)})
        return out

    def advisories(self) -> list[Advisory]:
        tab = t.intel_advisories
        with self.engine.connect() as conn:
            rows = conn.execute(select(tab.c.body).where(tab.c.org == self.org).order_by(tab.c.id))
            return [advisory_from_dict(b) for (b,) in rows]

    def advisory(self, advisory_id: str) -> Advisory | None:
        tab = t.intel_advisories
        with self.engine.connect() as conn:
            body = conn.execute(
                select(tab.c.body).where(tab.c.org == self.org, tab.c.id == advisory_id)
            ).scalar_one_or_none()
        return advisory_from_dict(body) if body is not None else None

    # ---- feeds kept current by date ----
    def feed_state(self, feed: str) -> FeedState | None:
        tab = t.intel_feeds
        with self.engine.connect() as conn:
            row = conn.execute(
                select(tab.c.version, tab.c.as_of, tab.c.entries).where(
                    tab.c.org == self.org, tab.c.feed == feed
                )
            ).first()
        return FeedState(feed, row[0], row[1], int(row[2])) if row else None

    def _newer(self, feed: str, as_of: str) -> FeedState | None:
        """The stored state when it is newer than ``as_of`` (then nothing may be replaced)."""
        held = self.feed_state(feed)
        return held if held is not None and held.as_of > as_of else None

    def _replace(self, conn: Any, feed: str, version: str | None, as_of: str, entries: int) -> None:
        conn.execute(
            delete(t.intel_feeds).where(t.intel_feeds.c.org == self.org, t.intel_feeds.c.feed == feed)
        )
        conn.execute(
            t.intel_feeds.insert().values(
                org=self.org, feed=feed, version=version, as_of=as_of, entries=entries
            )
        )

    def replace_kev(self, cat: KevCatalogue) -> FeedState | None:
        """Replace the stored catalogue by ``cat`` unless the stored one is newer (then return that)."""
        as_of = cat.released.isoformat()
        if (held := self._newer("kev", as_of)) is not None:
            return held
        rows = [
            {
                "org": self.org,
                "cve": e.cve,
                "date_added": (e.date_added or "")[:10] or None,
                "ransomware": e.ransomware,
                "body": dataclasses.asdict(e),
            }
            for e in cat.entries.values()
        ]
        with self.engine.begin() as conn:
            conn.execute(delete(t.intel_kev).where(t.intel_kev.c.org == self.org))
            for i in range(0, len(rows), _BATCH):
                conn.execute(t.intel_kev.insert(), rows[i : i + _BATCH])
            self._replace(conn, "kev", cat.version, as_of, len(rows))
        return None

    def replace_epss(self, scores: EpssScores) -> FeedState | None:
        as_of = scores.score_date.isoformat()
        if (held := self._newer("epss", as_of)) is not None:
            return held
        rows = [
            {"org": self.org, "cve": cve, "epss": p, "percentile": pct}
            for cve, (p, pct) in scores.scores.items()
        ]
        with self.engine.begin() as conn:
            conn.execute(delete(t.intel_epss).where(t.intel_epss.c.org == self.org))
            for i in range(0, len(rows), _BATCH):
                conn.execute(t.intel_epss.insert(), rows[i : i + _BATCH])
            self._replace(conn, "epss", scores.model_version, as_of, len(rows))
        return None

    def kev(self, cves: Iterable[str]) -> dict[str, KevEntry]:
        tab = t.intel_kev
        ids = list(dict.fromkeys(cves))
        out: dict[str, KevEntry] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                stmt = select(tab.c.body).where(tab.c.org == self.org, tab.c.cve.in_(ids[i : i + 500]))
                out.update({b["cve"]: KevEntry(**b) for (b,) in conn.execute(stmt)})
        return out

    def epss(self, cves: Iterable[str]) -> dict[str, float]:
        tab = t.intel_epss
        ids = list(dict.fromkeys(cves))
        out: dict[str, float] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                stmt = select(tab.c.cve, tab.c.epss).where(
                    tab.c.org == self.org, tab.c.cve.in_(ids[i : i + 500])
                )
                out.update({c: float(p) for c, p in conn.execute(stmt)})
        return out

    def count(self, table: str) -> int:
        tab = {
            "advisories": t.intel_advisories,
            "kev": t.intel_kev,
            "epss": t.intel_epss,
            "matches": t.intel_matches,
        }[table]
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(tab).where(tab.c.org == self.org)).scalar_one()
            )

    # ---- matches ----
    def replace_matches(self, matches: Iterable[AdvisoryMatch]) -> int:
        """The matcher's current answer replaces the previous one (an asset no longer matching is dropped)."""
        rows = [
            {
                "org": self.org,
                "id": stable_id("match", m.asset_id, m.advisory_id),
                "asset_id": m.asset_id,
                "advisory_id": m.advisory_id,
                "confidence": m.confidence,
                "body": dataclasses.asdict(m),
            }
            for m in matches
        ]
        with self.engine.begin() as conn:
            conn.execute(delete(t.intel_matches).where(t.intel_matches.c.org == self.org))
            _upsert(conn, t.intel_matches, rows, ("org", "id"))
        return len(rows)

    def matches(self, asset_id: str | None = None) -> list[AdvisoryMatch]:
        tab = t.intel_matches
        stmt = select(tab.c.body).where(tab.c.org == self.org)
        if asset_id is not None:
            stmt = stmt.where(tab.c.asset_id == asset_id)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.order_by(tab.c.confidence.desc(), tab.c.asset_id, tab.c.advisory_id))
            return [
                AdvisoryMatch(**{**b, "cves": tuple(b["cves"]), "reasons": tuple(b["reasons"])})
                for (b,) in rows
            ]


def intel(store: Store) -> IntelRepository:
    return IntelRepository(store.engine, store.org)
