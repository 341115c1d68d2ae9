"""Breach clocks of a case (start, state, met, warnings before expiry) and pre-filled notification drafts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from healthsec.model import RecordAccess, Severity
from healthsec.respond.clocks import BreachFacts, ClockState, clock_state, obligations, regime_of, warn_at
from healthsec.respond.drafts import DraftFacts, render_markdown

if TYPE_CHECKING:
    from healthsec.services.cases import CaseService
    from healthsec.store.cases import CaseTx

PERSONAL = {"personal", "health", "credentials-of-patients"}


def _tz(svc: CaseService) -> Any:
    return ZoneInfo(svc.config.tz) if svc.config.tz else None


def estimate_affected(svc: CaseService, case: dict[str, Any]) -> dict[str, Any]:
    """People and records affected, estimated from the evidence: patients named, record accesses cited."""
    patients: set[str] = set()
    records = 0
    accesses = 0
    for iid in case["body"]["incidents"]:
        inc = svc.store.incidents.get(iid)
        if inc is None:
            continue
        patients |= {e.value for e in inc.entities if e.kind.value == "patient"}
        for aid in inc.alert_ids:
            alert = svc.store.alerts.get(aid)
            if alert is None:
                continue
            for ev_id in alert.evidence:
                ev = svc.store.events.get(ev_id)
                if isinstance(ev, RecordAccess):
                    accesses += 1
                    records += ev.records
                    if ev.patient_id:
                        patients.add(ev.patient_id)
    return {
        "people": len(patients) if patients else None,
        "records": records if accesses else None,
        "basis": f"{len(patients)} distinct patients named in the evidence; {accesses} record accesses cited",
    }


def facts_for(svc: CaseService, case: dict[str, Any], aware_at: datetime) -> BreachFacts | None:
    """The facts that start clocks, or None when the case involves no personal data and no significant
    incident of an essential service (or the organisation has no jurisdiction configured)."""
    body = case["body"]
    cats = set(body.get("data_categories", []))
    personal = bool(cats & PERSONAL)
    significant = bool(body.get("significant"))
    juris = tuple(body.get("jurisdictions") or svc.config.jurisdictions)
    if not juris or not (personal or significant):
        return None
    est = estimate_affected(svc, case)
    return BreachFacts(
        aware_at=aware_at,
        jurisdictions=juris,
        individuals=est["people"],
        personal_data=personal,
        health_data="health" in cats,
        significant=significant,
        tz=_tz(svc),
    )


def start_clocks(svc: CaseService, case_id: str, actor: str, aware_at: datetime | None = None) -> int:
    """Record the moment of awareness and start every clock the case's facts call for; returns how many
    clocks are new. Calling it again does not restart a clock (the first awareness time stands)."""
    case = svc.require(case_id)
    with svc.repo.tx() as tx:
        return start_in(svc, tx, case, actor, aware_at)


def start_in(
    svc: CaseService, tx: CaseTx, case: dict[str, Any], actor: str, aware_at: datetime | None = None
) -> int:
    """:func:`start_clocks` inside the caller's transaction (e.g. the one that opens the case)."""
    aware = case["aware_at"] or aware_at or svc.clock()
    facts = facts_for(svc, case, aware)
    if facts is None:
        return 0
    new = 0
    now = svc.clock()
    if case["aware_at"] is None:
        tx.update_case(case["id"], aware_at=aware, updated_at=now)
    for o in obligations(facts):
        is_instant = isinstance(o.due, datetime)
        row = {
            "due_at": o.due if is_instant else None,
            "due_date": o.due.isoformat() if o.due is not None and not is_instant else None,
            "basis": o.basis,
            "met_at": None,
            "warned_at": None,
        }
        new += tx.add_clock(case["id"], o.regime, o.obligation, row)
    if new:
        when = aware.astimezone(UTC).isoformat()
        tx.timeline(case["id"], now, actor, "clocks.started", aware_at=when, clocks=new)
        svc.notify(tx, {**case, "aware_at": aware}, "clocks.started", "", now)
    return new


def _due(row: dict[str, Any]) -> datetime | date | None:
    if row["due_at"] is not None:
        due: datetime = row["due_at"]
        return due
    return date.fromisoformat(row["due_date"]) if row["due_date"] else None


def clock_rows(
    svc: CaseService, case_id: str | None = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Clocks with their deadline (UTC ISO instant or date) and state (due, met, late, open)."""
    now = now or svc.clock()
    tz = _tz(svc)
    out = []
    for r in svc.repo.clocks(case_id):
        due = _due(r)
        state = clock_state(due, now, r["met_at"], tz)
        out.append(
            {
                "case": r["case_id"],
                "regime": r["regime"],
                "obligation": r["obligation"],
                "due": None
                if due is None
                else (
                    due.astimezone(UTC).isoformat().replace("+00:00", "Z")
                    if isinstance(due, datetime)
                    else due.isoformat()
                ),
                "state": state.value,
                "met_at": None if r["met_at"] is None else r["met_at"].isoformat(),
                "basis": r["basis"],
            }
        )
    return out


def mark_met(svc: CaseService, case_id: str, obligation: str, actor: str, at: datetime | None = None) -> str:
    """Record that an obligation was fulfilled (e.g. the authority was notified by a person)."""
    regime, _, name = obligation.partition(".")
    if not name:
        raise ValueError(
            f"obligation {obligation!r}: use REGIME.OBLIGATION, e.g. gdpr.authority_notification"
        )
    regime_of("eu" if regime in ("gdpr", "nis2") else "us")
    svc.require(case_id)
    when = at or svc.clock()
    with svc.repo.tx() as tx:
        if not tx.set_clock(case_id, regime, name, met_at=when):
            raise ValueError(f"case {case_id} has no clock {obligation}")
        tx.timeline(case_id, svc.clock(), actor, "clock.met", obligation=obligation, at=when.isoformat())
    rows = [r for r in clock_rows(svc, case_id) if r["regime"] == regime and r["obligation"] == name]
    return str(rows[0]["state"])


def refresh(svc: CaseService, now: datetime | None = None) -> dict[str, int]:
    """Queue a warning for every clock close to expiry and a notice for every clock that ran out (once)."""
    now = now or svc.clock()
    tz = _tz(svc)
    warned = late = 0
    for r in svc.repo.clocks():
        due = _due(r)
        if due is None or r["met_at"] is not None:
            continue
        case = svc.repo.get(r["case_id"])
        if case is None or case["aware_at"] is None:
            continue
        key = f"{r['regime']}.{r['obligation']}"
        state = clock_state(due, now, None, tz)
        if state is ClockState.LATE:
            with svc.repo.tx() as tx:
                svc.notify(tx, case, "clock.late", key, now)
            late += 1
        elif r["warned_at"] is None and now >= warn_at(due, case["aware_at"], tz):
            with svc.repo.tx() as tx:
                tx.set_clock(r["case_id"], r["regime"], r["obligation"], warned_at=now)
                tx.timeline(r["case_id"], now, "healthsec", "clock.due_soon", obligation=key)
                svc.notify(tx, case, "clock.due_soon", key, now)
            warned += 1
    return {"warned": warned, "late": late}


def draft(svc: CaseService, case_id: str, regime: str) -> str:
    """A Markdown draft pre-filled from the case, for a person to complete; never sent anywhere."""
    case = svc.require(case_id)
    shown = svc.show(case_id)
    incidents = [i for i in (svc.store.incidents.get(x) for x in case["body"]["incidents"]) if i is not None]
    est = estimate_affected(svc, case)
    measures = [f"{c.get('action')} {c.get('target')} ({c.get('status')})" for c in shown["containment"]] + [
        f"task: {t['title']} ({t['status']})" for t in shown["tasks"]
    ]
    facts = DraftFacts(
        case_id=case_id,
        organisation=svc.store.org,
        title=case["title"],
        summary=[i.summary or i.title for i in incidents],
        first_seen=min((i.first_seen for i in incidents), default=None),
        last_seen=max((i.last_seen for i in incidents), default=None),
        aware_at=case["aware_at"],
        severity=Severity(case["severity"]).label,
        data_categories=tuple(case["body"].get("data_categories", [])),
        people=est["people"],
        records=est["records"],
        estimate_basis=est["basis"],
        tactics=tuple(sorted({t for i in incidents for t in i.tactics})),
        measures=tuple(measures),
        contact=svc.config.contact,
        clocks=tuple(c for c in shown["clocks"] if c["regime"] == regime),
        ongoing=case["status"] != "closed",
    )
    return render_markdown(facts, regime)
