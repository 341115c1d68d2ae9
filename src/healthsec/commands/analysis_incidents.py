"""``healthsec incidents merge|split``: an analyst corrects the correlation; no alert is ever lost."""

from __future__ import annotations

from typing import Annotated

import typer

from healthsec.commands.adapter import CLI_ACTOR, FormatOption, JsonOption, emit, opened, wants_json
from healthsec.commands.analysis import incidents_app
from healthsec.commands.groups import DbOption, console
from healthsec.model.codec import to_dict
from healthsec.services import incidents as incident_use


@incidents_app.command("merge")
def incidents_merge(
    incident_ids: Annotated[list[str], typer.Argument(help="Two or more incident ids to merge into one.")],
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Merge incidents that are one story (the merged incident keeps every alert)."""
    as_json = wants_json(fmt, as_json)
    with opened(db) as store:
        merged = incident_use.merge(store, incident_ids, actor=CLI_ACTOR)
    if as_json:
        emit(to_dict(merged))
    else:
        console.print(
            f"merged {len(set(incident_ids))} incidents into {merged.id} ({len(merged.alert_ids)} alerts)"
        )


@incidents_app.command("split")
def incidents_split(
    incident_id: Annotated[str, typer.Argument(help="The incident to split.")],
    alert_ids: Annotated[list[str], typer.Argument(help="Alert ids that become a new incident.")],
    fmt: FormatOption = "table",
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Split alerts out of an incident into a new one (both keep all their alerts)."""
    as_json = wants_json(fmt, as_json)
    with opened(db) as store:
        kept, moved = incident_use.split(store, incident_id, alert_ids, actor=CLI_ACTOR)
    if as_json:
        emit({"kept": to_dict(kept), "new": to_dict(moved)})
    else:
        console.print(
            f"{incident_id} split: {kept.id} keeps {len(kept.alert_ids)} alerts, "
            f"{moved.id} takes {len(moved.alert_ids)}"
        )


def register(app: typer.Typer) -> None:
    """The commands hang on the ``incidents`` group that ``healthsec.commands.analysis`` registers."""
    del app
