"""Internal identifiers the exit door must replace, gathered from the store (inventory, alerts, incidents)."""

from __future__ import annotations

from healthsec.share.outbound import known_identifiers
from healthsec.store import Store


def known_from_store(store: Store, *, incident_limit: int = 10_000) -> dict[str, set[str]]:
    """Host names, users, patients, devices and AE titles this organisation knows about, by token kind.

    Pass the result as ``known=`` to :func:`healthsec.share.outbound.outbound` wherever objects leave
    (export, TAXII responses, push): host names that appear only in prose are caught this way.
    """
    incidents = store.incidents.list(limit=incident_limit)
    alerts = [a for i in incidents for aid in i.alert_ids if (a := store.alerts.get(aid)) is not None]
    known = known_identifiers(incidents, alerts)
    for asset in store.assets.list():
        if asset.name:
            known.setdefault("host", set()).add(asset.name)
    return known
