"""Breach-notification clocks (GDPR 33/34, NIS2 23(4), HIPAA 164.400-414): pure deadline arithmetic.

Rules that count hours give an instant (aware UTC datetime). Rules that count calendar days (HIPAA) give
a date, counted in the organisation's local calendar (the offset of the stated awareness time, or the
time zone given). "One month" (NIS2 final report) is a calendar month in local time, clamped at the
month's end (31 January + 1 month = 28/29 February), then converted to UTC.

Hand-written on purpose: no maintained library encodes these legal rules; the calendar maths itself is
``dateutil.relativedelta`` and ``zoneinfo``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum

from dateutil.relativedelta import relativedelta

HIPAA_HHS_THRESHOLD = 500  # 164.408(b): "500 or more individuals" -> contemporaneous notice to HHS
HIPAA_MEDIA_THRESHOLD = 500  # 164.406(a): "more than 500 residents of a State or jurisdiction"


class ClockState(StrEnum):
    DUE = "due"
    MET = "met"
    LATE = "late"
    OPEN = "open"  # no fixed deadline ("without undue delay", "on request")


@dataclass(frozen=True, slots=True)
class Obligation:
    """One thing the organisation must do by a deadline (or without one), with the rule that says so."""

    regime: str  # gdpr | nis2 | hipaa
    obligation: str  # machine key, e.g. "authority_notification"
    due: datetime | date | None
    basis: str

    def due_text(self) -> str | None:
        """UTC ISO 8601 for instants (``...Z``), ``YYYY-MM-DD`` for calendar-day rules, None without one."""
        if self.due is None:
            return None
        if isinstance(self.due, datetime):
            return self.due.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return self.due.isoformat()

    def as_dict(self) -> dict[str, str | None]:
        return {
            "regime": self.regime,
            "obligation": self.obligation,
            "due": self.due_text(),
            "basis": self.basis,
        }


@dataclass(frozen=True, slots=True)
class BreachFacts:
    """What is known about a breach: when the organisation became aware, where it answers, how many."""

    aware_at: datetime
    jurisdictions: Sequence[str]  # "eu", "eu:DE", "us"
    individuals: int | None = None  # people affected (HIPAA thresholds)
    residents: Mapping[str, int] = field(default_factory=dict)  # US state -> residents affected
    notified_at: datetime | None = None  # when the NIS2 incident notification was sent
    ongoing: bool = False  # NIS2: incident still ongoing when the final report falls due
    handled_at: datetime | None = None  # NIS2: when handling ended (final report after a progress report)
    personal_data: bool = True  # GDPR applies to personal-data breaches
    health_data: bool = True  # HIPAA applies to unsecured PHI
    significant: bool = True  # NIS2 applies to significant incidents of essential/important entities
    tz: tzinfo | None = None  # local calendar; default: the offset of aware_at

    def __post_init__(self) -> None:
        for name in ("aware_at", "notified_at", "handled_at"):
            value = getattr(self, name)
            if value is not None and (value.tzinfo is None or value.utcoffset() is None):
                raise ValueError(f"{name} {value.isoformat()} has no time zone; state the offset")
        for j in self.jurisdictions:
            regime_of(j)
        if self.individuals is not None and self.individuals < 0:
            raise ValueError(f"individuals must be >= 0, got {self.individuals}")
        for state, n in self.residents.items():
            if n < 0:
                raise ValueError(f"residents of {state} must be >= 0, got {n}")
        total = sum(self.residents.values())
        if self.individuals is not None and total > self.individuals:
            raise ValueError(f"residents ({total}) exceed the individuals affected ({self.individuals})")


def regime_of(jurisdiction: str) -> str:
    """``eu``/``eu:DE`` -> ``eu``; ``us`` -> ``us``; anything else is an error naming the value."""
    head = jurisdiction.strip().lower().split(":", 1)[0]
    if head not in ("eu", "us"):
        raise ValueError(f"unknown jurisdiction {jurisdiction!r}: use eu, eu:<member state> or us")
    return head


def add_month(ts: datetime, tz: tzinfo | None = None) -> datetime:
    """``ts`` plus one calendar month in local time (clamped at month end), returned in UTC."""
    local = ts.astimezone(tz) if tz is not None else ts
    later: datetime = local + relativedelta(months=1)
    return later.astimezone(UTC)


def local_date(ts: datetime, tz: tzinfo | None = None) -> date:
    """The calendar date of ``ts`` in the organisation's local calendar."""
    return (ts.astimezone(tz) if tz is not None else ts).date()


def _gdpr(f: BreachFacts) -> list[Obligation]:
    if not f.personal_data:
        return []
    return [
        Obligation(
            "gdpr",
            "authority_notification",
            f.aware_at.astimezone(UTC) + timedelta(hours=72),
            "GDPR Art. 33(1): notify the supervisory authority without undue delay and, where feasible, "
            "not later than 72 hours after becoming aware; later: with the reasons for the delay. "
            "Art. 33(4): information may be given in phases.",
        ),
        Obligation(
            "gdpr",
            "data_subjects",
            None,
            "GDPR Art. 34(1): tell data subjects without undue delay when the breach is likely to result "
            "in a high risk to them (exceptions in Art. 34(3), e.g. data unintelligible by encryption).",
        ),
        Obligation(
            "gdpr",
            "documentation",
            None,
            "GDPR Art. 33(5): document every personal data breach (facts, effects, remedial action), "
            "whether notified or not.",
        ),
    ]


def _nis2(f: BreachFacts) -> list[Obligation]:
    if not f.significant:
        return []
    aware = f.aware_at.astimezone(UTC)
    notification = aware + timedelta(hours=72)
    out = [
        Obligation(
            "nis2",
            "early_warning",
            aware + timedelta(hours=24),
            "NIS2 Art. 23(4)(a): early warning to the CSIRT or competent authority within 24 hours of "
            "becoming aware of the significant incident.",
        ),
        Obligation(
            "nis2",
            "incident_notification",
            notification,
            "NIS2 Art. 23(4)(b): incident notification within 72 hours of becoming aware.",
        ),
        Obligation(
            "nis2",
            "intermediate_report",
            None,
            "NIS2 Art. 23(4)(c): intermediate report upon request of the CSIRT or competent authority.",
        ),
    ]
    base = f.notified_at or notification
    since = "the incident notification" if f.notified_at else "the latest allowed incident notification"
    if f.ongoing:
        out.append(
            Obligation(
                "nis2",
                "progress_report",
                add_month(base, f.tz),
                f"NIS2 Art. 23(4)(e): incident ongoing, progress report one month after {since}.",
            )
        )
        out.append(
            Obligation(
                "nis2",
                "final_report",
                None if f.handled_at is None else add_month(f.handled_at, f.tz),
                "NIS2 Art. 23(4)(e): final report within one month of handling the incident"
                + (" (handling not finished yet)." if f.handled_at is None else "."),
            )
        )
    else:
        out.append(
            Obligation(
                "nis2",
                "final_report",
                add_month(base, f.tz),
                f"NIS2 Art. 23(4)(d): final report not later than one month after {since}.",
            )
        )
    return out


def _hipaa(f: BreachFacts) -> list[Obligation]:
    if not f.health_data:
        return []
    discovered = local_date(f.aware_at, f.tz)
    sixty = discovered + timedelta(days=60)
    out = [
        Obligation(
            "hipaa",
            "risk_assessment",
            None,
            "45 CFR 164.402(2): breach presumed unless a documented four-factor risk assessment shows a "
            "low probability of compromise (nature and extent of PHI; the unauthorised person; whether "
            "PHI was actually acquired or viewed; extent of mitigation).",
        ),
        Obligation(
            "hipaa",
            "individuals",
            sixty,
            "45 CFR 164.404(b): notify each individual without unreasonable delay and in no case later "
            "than 60 calendar days after discovery.",
        ),
    ]
    n = f.individuals
    if n is None or n >= HIPAA_HHS_THRESHOLD:
        why = "" if n is not None else " (number affected unknown: the earlier deadline is assumed)"
        out.append(
            Obligation(
                "hipaa",
                "hhs",
                sixty,
                "45 CFR 164.408(b): 500 or more individuals, notify the Secretary (HHS) contemporaneously "
                f"with the individual notice, within 60 calendar days of discovery{why}.",
            )
        )
    else:
        year_end = date(discovered.year, 12, 31)
        out.append(
            Obligation(
                "hipaa",
                "hhs_annual_log",
                year_end + timedelta(days=60),
                f"45 CFR 164.408(c): fewer than 500 individuals ({n}), log it and report to the Secretary "
                f"within 60 days after the end of calendar year {discovered.year}.",
            )
        )
    for state, count in sorted(f.residents.items()):
        if count > HIPAA_MEDIA_THRESHOLD:
            out.append(
                Obligation(
                    "hipaa",
                    f"media:{state.upper()}",
                    sixty,
                    f"45 CFR 164.406: more than 500 residents of {state.upper()} ({count}), notify prominent "
                    "media outlets serving it within 60 calendar days of discovery.",
                )
            )
    return out


def obligations(facts: BreachFacts) -> list[Obligation]:
    """Every obligation the stated facts start, in the order of the jurisdictions, then by rule."""
    out: list[Obligation] = []
    regimes = [regime_of(j) for j in facts.jurisdictions]
    for regime in dict.fromkeys(regimes):
        if regime == "eu":
            out += _gdpr(facts) + _nis2(facts)
        else:
            out += _hipaa(facts)
    return out


def _as_instant(due: datetime | date, tz: tzinfo | None) -> datetime:
    """A date deadline lasts until the end of that local day."""
    if isinstance(due, datetime):
        return due
    end = datetime(due.year, due.month, due.day, 23, 59, 59, tzinfo=tz or UTC)
    return end.astimezone(UTC)


def clock_state(
    due: datetime | date | None, now: datetime, met_at: datetime | None = None, tz: tzinfo | None = None
) -> ClockState:
    """due / met / late (or open when the rule sets no fixed deadline)."""
    if due is None:
        return ClockState.MET if met_at is not None else ClockState.OPEN
    limit = _as_instant(due, tz)
    if met_at is not None:
        return ClockState.MET if met_at <= limit else ClockState.LATE
    return ClockState.LATE if now > limit else ClockState.DUE


def warn_at(due: datetime | date, aware_at: datetime, tz: tzinfo | None = None) -> datetime:
    """When to warn before a deadline: a quarter of the clock before expiry (at most 7 days before)."""
    limit = _as_instant(due, tz)
    lead = min((limit - aware_at.astimezone(UTC)) / 4, timedelta(days=7))
    return limit - max(lead, timedelta(0))
