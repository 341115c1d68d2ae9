"""``healthsec share export``: incidents as STIX 2.1 or MISP, through the privacy and policy exit door."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healthsec.commands.adapter import CLI_ACTOR, KeyFileOption, file_sink, opened, our_name, sharing_keys
from healthsec.commands.groups import DbOption, console, share_app
from healthsec.services.share import export_incidents


@share_app.command("export")
def export(
    to: Annotated[
        Path,
        typer.Option(
            "--out",
            "--to",
            help="File to write (the STIX bundle or the MISP event JSON); --to is the old name.",
        ),
    ],
    incident: Annotated[
        list[str] | None, typer.Option("--incident", help="Incident id to share (repeat; default: all).")
    ] = None,
    tlp: Annotated[
        str, typer.Option("--tlp", help="TLP 2.0 marking: clear, green, amber, amber+strict.")
    ] = "amber",
    partner: Annotated[str | None, typer.Option("--partner", help="Registered partner receiving it.")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="stix (STIX 2.1 bundle) or misp (MISP event JSON).")
    ] = "stix",
    key_file: KeyFileOption = None,
    producer: Annotated[
        str | None, typer.Option("--producer", help="Our organisation's public name.")
    ] = None,
    internal_net: Annotated[
        list[str] | None, typer.Option("--internal-net", help="Extra internal CIDR to pseudonymise (repeat).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Export incidents for a partner: privacy transforms, TLP and the partner's rules always apply."""
    keys = sharing_keys(key_file)
    with opened(db) as store:
        res = export_incidents(
            store,
            keys,
            sink=file_sink(to),
            actor=CLI_ACTOR,
            producer=our_name(producer),
            incident_ids=incident or [],
            tlp=tlp,
            partner=partner,
            fmt=fmt,
            internal_networks=internal_net or (),
        )
    for warning in res.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(
        f"wrote {res.objects} STIX objects ({res.withheld} withheld by policy) for "
        f"{res.recipient} as {res.fmt} to {to}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Commands live on the shared ``share`` group (registered by the CLI itself)."""
    del app
