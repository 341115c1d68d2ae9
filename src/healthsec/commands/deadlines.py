"""``healthsec deadlines``: breach-notification clocks for stated facts, without a case (what-if)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from healthsec.commands.adapter import FormatOption, wants_json
from healthsec.commands.groups import console, fail


def _instant(text: str, flag: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"{flag} {text!r} is not an ISO 8601 time (e.g. 2026-12-31T22:00+01:00)") from None
    if ts.tzinfo is None:
        raise fail(f"{flag} {text!r} has no time zone offset; add one (e.g. +01:00 or Z)")
    return ts


def _residents(values: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        state, sep, count = v.partition("=")
        if not sep or not state.strip() or not count.strip().isdigit():
            raise fail(f"--residents {v!r}: use STATE=COUNT, e.g. CA=600")
        out[state.strip().upper()] = out.get(state.strip().upper(), 0) + int(count)
    return out


def deadlines(
    aware_at: Annotated[
        str, typer.Option("--aware-at", help="When the organisation became aware (ISO 8601 with offset).")
    ],
    jurisdiction: Annotated[
        list[str], typer.Option("--jurisdiction", help="eu, eu:<member state> or us (repeatable).")
    ],
    individuals: Annotated[
        int | None, typer.Option("--individuals", min=0, help="People affected (HIPAA thresholds).")
    ] = None,
    residents: Annotated[
        list[str] | None, typer.Option("--residents", help="STATE=COUNT residents affected (repeatable).")
    ] = None,
    notified_at: Annotated[
        str | None, typer.Option("--notified-at", help="When the NIS2 incident notification was sent.")
    ] = None,
    ongoing: Annotated[bool, typer.Option("--ongoing", help="NIS2: the incident is still ongoing.")] = False,
    output_format: FormatOption = "table",
) -> None:
    """Compute GDPR, NIS2 and HIPAA deadlines from stated facts (nothing is stored or sent)."""
    import orjson

    from healthsec.respond.clocks import BreachFacts, obligations

    as_json = wants_json(output_format)
    try:
        facts = BreachFacts(
            aware_at=_instant(aware_at, "--aware-at"),
            jurisdictions=tuple(jurisdiction),
            individuals=individuals,
            residents=_residents(residents or []),
            notified_at=_instant(notified_at, "--notified-at") if notified_at else None,
            ongoing=ongoing,
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    rows: list[dict[str, Any]] = [o.as_dict() for o in obligations(facts)]
    if as_json:
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    from rich.table import Table

    table = Table(title="Breach-notification deadlines (what-if)")
    for col in ("regime", "obligation", "due (UTC)", "basis"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["regime"], r["obligation"], r["due"] or "no fixed deadline", r["basis"])
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("deadlines")(deadlines)
