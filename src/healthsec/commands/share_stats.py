"""``healthsec share stats``: differentially private counts of incidents by ATT&CK technique for partners."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from healthsec.app import open_store
from healthsec.commands.groups import DbOption, console, fail, share_app
from healthsec.privacy.dp import BudgetExhausted, PrivacyBudget, dp_counts
from healthsec.privacy.kanon import check_k_anonymity
from healthsec.share.keys import KeyMissing, load_keys
from healthsec.share.outbound import outbound_text
from healthsec.store import StoreError

if TYPE_CHECKING:
    from healthsec.store import Store  # annotations only: SQLAlchemy loads when a command runs

ACTION = "share.stats"


def _spent(store: Store, period: str) -> float:
    """Epsilon already released in ``period``, from the audit log (every release is recorded there)."""
    rows = store.audit.list(limit=100_000)
    return sum(
        float(r["detail"].get("epsilon", 0.0))
        for r in rows
        if r["action"] == ACTION and isinstance(r.get("detail"), dict) and r["detail"].get("period") == period
    )


@share_app.command("stats")
def stats(
    to: Annotated[Path, typer.Option("--to", help="File to write the aggregate JSON to.")],
    epsilon: Annotated[float, typer.Option("--epsilon", help="Privacy loss spent by this release.")] = 0.5,
    budget: Annotated[
        float, typer.Option("--budget", help="Total epsilon per calendar month (UTC) for all releases.")
    ] = 1.0,
    max_techniques: Annotated[
        int, typer.Option("--max-techniques", help="Techniques counted per incident (bounds sensitivity).")
    ] = 5,
    k: Annotated[int, typer.Option("--k", help="k for the per-incident table (severity, first tactic).")] = 5,
    key_file: Annotated[
        Path | None, typer.Option("--key-file", help="Community key file (else $HEALTHSEC_SHARING_KEY).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Noisy counts of incidents by technique (OpenDP); refused once the month's budget is spent."""
    if not epsilon > 0 or not budget > 0:
        raise fail("--epsilon and --budget must be positive")
    try:
        keys = load_keys(key_file)
    except KeyMissing as exc:
        raise fail(str(exc)) from None
    try:
        store = open_store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None
    period = datetime.now(UTC).strftime("%Y-%m")
    try:
        incidents = store.incidents.list(limit=max(store.incidents.count(), 1))
        from healthsec.ingest.attack_data import AttackDataError, load_attack

        try:
            universe = {t.id for t in load_attack().techniques()}  # public key set: reveals nothing
        except AttackDataError as exc:
            raise fail(f"ATT&CK data unavailable ({exc}); the key set of the counts must be public") from None
        counts = dict.fromkeys(universe, 0)
        for inc in incidents:
            for tid in sorted(set(inc.techniques) & universe)[:max_techniques]:
                counts[tid] += 1
        spent = _spent(store, period)
        pb = PrivacyBudget(total=budget, spent=spent)
        try:
            noisy = dp_counts(
                counts, epsilon, pb, contributions=max_techniques, purpose="incidents by technique"
            )
        except BudgetExhausted as exc:
            raise fail(f"privacy budget for {period}: {exc}") from None
        rows = [
            {"severity": i.severity.label, "first_tactic": i.tactics[0] if i.tactics else None}
            for i in incidents
        ]
        table = check_k_anonymity(rows, ["severity", "first_tactic"], k)
        doc: dict[str, Any] = {
            "type": "healthsec-aggregate",
            "period": period,
            "mechanism": "OpenDP Laplace on integer counts",
            "epsilon": epsilon,
            "sensitivity": max_techniques,
            "incidents_by_technique": {t: n for t, n in sorted(noisy.items()) if n > 0},
            "incident_table": rows if table.ok else None,
            "incident_table_withheld": None if table.ok else table.describe(),
        }
        text = outbound_text(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode(), keys)
        try:
            to.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise fail(f"cannot write {to}: {exc.strerror}") from None
        store.audit.record("cli", ACTION, None, period=period, epsilon=epsilon, incidents=len(incidents))
    finally:
        store.close()
    shown = "shared" if table.ok else f"withheld ({table.describe()})"
    console.print(
        f"wrote noisy counts for {len(doc['incidents_by_technique'])} techniques to {to}; "
        f"epsilon {epsilon:g} spent, {pb.remaining:g} of {budget:g} left for {period}; "
        f"per-incident table {shown}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Commands live on the shared ``share`` group (registered by the CLI itself)."""
    del app
