"""``healthsec share import-misp``: a partner MISP event, converted by misp-stix, through the STIX import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healthsec.commands.adapter import CLI_ACTOR, InboxOption, SourceOption, opened, read_input
from healthsec.commands.groups import DbOption, console, share_app
from healthsec.services.share_sync import import_misp as import_event


@share_app.command("import-misp")
def import_misp(
    file: Annotated[Path, typer.Argument(help="A partner's MISP event JSON ({'Event': {...}}).")],
    collection: InboxOption = "inbox",
    source: SourceOption = None,
    db: DbOption = None,
) -> None:
    """Convert a MISP event to STIX 2.1 and import it whole, or quarantine it with the reason."""
    raw = read_input(file)
    with opened(db) as store:
        got = import_event(
            store, raw, source=source or file.name, name=file.name, actor=CLI_ACTOR, collection=collection
        )
    res = got.result
    kinds = ", ".join(f"{n} {t}" for t, n in sorted(res.by_type.items()))
    console.print(
        f"{file}: MISP event ({got.tlp or 'no TLP tag'}) -> {res.added} new STIX object "
        f"versions, {res.duplicates} already known ({kinds}) into {collection}",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Commands live on the shared ``share`` group (registered by the CLI itself)."""
    del app
