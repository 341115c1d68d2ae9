"""The alerts' asset-naming entities as rows (``alert_entities``): risk per asset as one GROUP BY.

Written beside each alert by :meth:`AlertRepository.add_many` and filled for stored alerts by the
migration that made the table; read by :meth:`Aggregates.alert_kinds_by_asset`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.engine import Connection

from healthsec.model.common import ASSET_KINDS, Severity
from healthsec.store import schema

_BATCH = 500
_KINDS = frozenset(k.value for k in ASSET_KINDS)


def entity_rows(org: str, bodies: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per distinct asset-naming entity value (lowercased) of each alert body (the codec's dict)."""
    rows = []
    for body in bodies:
        seen: set[str] = set()
        for ent in body.get("entities", ()):
            value = str(ent.get("value") or "").lower()
            if ent.get("kind") in _KINDS and value and value not in seen:
                seen.add(value)
                rows.append(
                    {
                        "org": org,
                        "alert_id": body["id"],
                        "value": value,
                        "detector": body["detector"],
                        "title": body["title"],
                        "severity": int(Severity.parse(body["severity"])),
                    }
                )
    return rows


def write_entities(
    conn: Connection, org: str, bodies: Iterable[Mapping[str, Any]], replaced: Iterable[str] = ()
) -> None:
    """Store the entity rows of these alert bodies; ``replaced`` alerts (stored before) lose old rows."""
    t = schema.alert_entities
    old = list(replaced)
    for start in range(0, len(old), _BATCH):
        conn.execute(delete(t).where(t.c.org == org, t.c.alert_id.in_(old[start : start + _BATCH])))
    rows = entity_rows(org, bodies)
    for start in range(0, len(rows), _BATCH):
        conn.execute(insert(t), rows[start : start + _BATCH])
