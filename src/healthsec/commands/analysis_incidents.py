"""``healthsec incidents merge|split``: an analyst corrects the correlation; no alert is ever lost."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from healthsec.commands.analysis import JsonOption, _emit, _store, incidents_app
from healthsec.commands.groups import DbOption, console, fail
from healthsec.model import Alert, Incident
from healthsec.model.codec import to_dict

if TYPE_CHECKING:
    from healthsec.store import Store  # annotations only: SQLAlchemy loads when a command runs


def _alerts_of(store: Store, incidents: list[Incident]) -> dict[str, Alert]:
    out: dict[str, Alert] = {}
    for inc in incidents:
        for aid in inc.alert_ids:
            alert = store.alerts.get(aid)
            if alert is not None:
                out[aid] = alert
    return out


def _replace(store: Store, remove: set[str], add: list[Incident], action: str) -> None:
    """Swap incidents in one go; every alert of the removed ones is in an added one (checked)."""
    current = store.incidents.list(limit=10_000_000)
    before = {a for i in current if i.id in remove for a in i.alert_ids}
    after = {a for i in add for a in i.alert_ids}
    if before != after:  # the correlator's merge/split guarantee this; refuse to store anything else
        raise fail(f"{action} would lose alerts {sorted(before - after)[:5]}; nothing changed")
    store.incidents.replace_all([i for i in current if i.id not in remove] + add)
    store.audit.record("cli", f"incidents.{action}", ",".join(sorted(remove)), into=[i.id for i in add])


@incidents_app.command("merge")
def incidents_merge(
    incident_ids: Annotated[list[str], typer.Argument(help="Two or more incident ids to merge into one.")],
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Merge incidents that are one story (the merged incident keeps every alert)."""
    from healthsec.analyze.correlate import merge

    if len(set(incident_ids)) < 2:
        raise fail("merge needs at least two different incident ids")
    store = _store(db)
    try:
        found = [store.incidents.get(i) for i in incident_ids]
        missing = [i for i, inc in zip(incident_ids, found, strict=True) if inc is None]
        if missing:
            raise fail(f"no incident {', '.join(missing)}")
        incidents = [i for i in found if i is not None]
        try:
            merged = merge(incidents, _alerts_of(store, incidents))
        except KeyError as exc:
            raise fail(f"cannot merge: {exc.args[0]}") from None
        _replace(store, {i.id for i in incidents}, [merged], "merge")
    finally:
        store.close()
    if as_json:
        _emit(to_dict(merged))
    else:
        console.print(f"merged {len(incidents)} incidents into {merged.id} ({len(merged.alert_ids)} alerts)")


@incidents_app.command("split")
def incidents_split(
    incident_id: Annotated[str, typer.Argument(help="The incident to split.")],
    alert_ids: Annotated[list[str], typer.Argument(help="Alert ids that become a new incident.")],
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Split alerts out of an incident into a new one (both keep all their alerts)."""
    from healthsec.analyze.correlate import split

    store = _store(db)
    try:
        inc = store.incidents.get(incident_id)
        if inc is None:
            raise fail(f"no incident {incident_id!r}")
        try:
            kept, moved = split(inc, alert_ids, _alerts_of(store, [inc]))
        except (ValueError, KeyError) as exc:
            raise fail(f"cannot split: {exc}") from None
        _replace(store, {inc.id}, [kept, moved], "split")
    finally:
        store.close()
    if as_json:
        _emit({"kept": to_dict(kept), "new": to_dict(moved)})
    else:
        console.print(
            f"{incident_id} split: {kept.id} keeps {len(kept.alert_ids)} alerts, "
            f"{moved.id} takes {len(moved.alert_ids)}"
        )


def register(app: typer.Typer) -> None:
    """The commands hang on the ``incidents`` group that ``healthsec.commands.analysis`` registers."""
    del app
