"""``healthsec share stats``: differentially private counts of incidents by ATT&CK technique for partners."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healthsec.commands.adapter import CLI_ACTOR, KeyFileOption, file_sink, opened, sharing_keys
from healthsec.commands.groups import DbOption, console, share_app
from healthsec.services.share import release_stats


@share_app.command("stats")
def stats(
    to: Annotated[
        Path,
        typer.Option("--out", "--to", help="File to write the aggregate JSON to (--to is the old name)."),
    ],
    epsilon: Annotated[float, typer.Option("--epsilon", help="Privacy loss spent by this release.")] = 0.5,
    budget: Annotated[
        float, typer.Option("--budget", help="Total epsilon per calendar month (UTC) for all releases.")
    ] = 1.0,
    max_techniques: Annotated[
        int, typer.Option("--max-techniques", help="Techniques counted per incident (bounds sensitivity).")
    ] = 5,
    k: Annotated[int, typer.Option("--k", help="k for the per-incident table (severity, first tactic).")] = 5,
    key_file: KeyFileOption = None,
    db: DbOption = None,
) -> None:
    """Noisy counts of incidents by technique (OpenDP); refused once the month's budget is spent."""
    keys = sharing_keys(key_file)
    with opened(db) as store:
        res = release_stats(
            store,
            keys,
            sink=file_sink(to),
            actor=CLI_ACTOR,
            epsilon=epsilon,
            budget=budget,
            max_techniques=max_techniques,
            k=k,
        )
    shown = "shared" if res.table_shared else f"withheld ({res.table_note})"
    console.print(
        f"wrote noisy counts for {res.techniques} techniques to {to}; "
        f"epsilon {res.epsilon:g} spent, {res.remaining:g} of {res.budget:g} left for {res.period}; "
        f"per-incident table {shown}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Commands live on the shared ``share`` group (registered by the CLI itself)."""
    del app
