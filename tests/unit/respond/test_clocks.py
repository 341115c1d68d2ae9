"""Breach-clock arithmetic pinned: time zones, month ends, HIPAA calendar-year rule, 500 thresholds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from healthsec.respond.clocks import BreachFacts, ClockState, add_month, clock_state, obligations

CET = timezone(timedelta(hours=1))


def _due(facts: BreachFacts) -> dict[str, str | None]:
    return {f"{o.regime}.{o.obligation}": o.due_text() for o in obligations(facts)}


def test_eu_clocks_across_the_new_year_in_local_time() -> None:
    due = _due(BreachFacts(aware_at=datetime(2026, 12, 31, 22, 0, tzinfo=CET), jurisdictions=["eu"]))
    assert due["gdpr.authority_notification"] == "2027-01-03T21:00:00Z"
    assert due["nis2.early_warning"] == "2027-01-01T21:00:00Z"
    assert due["nis2.incident_notification"] == "2027-01-03T21:00:00Z"
    assert due["nis2.final_report"] == "2027-02-03T21:00:00Z"
    assert due["gdpr.data_subjects"] is None
    assert due["gdpr.documentation"] is None


def test_nis2_final_report_runs_from_the_real_notification_clamped_at_month_end() -> None:
    facts = BreachFacts(
        aware_at=datetime(2027, 1, 30, 9, 0, tzinfo=CET),
        jurisdictions=["eu:DE"],
        notified_at=datetime(2027, 1, 31, 0, 30, tzinfo=CET),
    )
    # local 31 Jan 00:30 + one month = 28 Feb 00:30 (+01:00) = 27 Feb 23:30 UTC, not 28 Feb in UTC maths
    assert _due(facts)["nis2.final_report"] == "2027-02-27T23:30:00Z"


def test_one_month_in_a_leap_year_and_across_daylight_saving() -> None:
    assert add_month(datetime(2028, 1, 31, 12, 0, tzinfo=UTC)) == datetime(2028, 2, 29, 12, 0, tzinfo=UTC)
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2027, 3, 1, 12, 0, tzinfo=berlin)  # CET; a month later is CEST
    assert add_month(start, berlin) == datetime(2027, 4, 1, 10, 0, tzinfo=UTC)


def test_ongoing_incident_gets_a_progress_report_and_final_after_handling() -> None:
    facts = BreachFacts(
        aware_at=datetime(2027, 5, 2, 8, 0, tzinfo=UTC),
        jurisdictions=["eu"],
        notified_at=datetime(2027, 5, 4, 8, 0, tzinfo=UTC),
        ongoing=True,
    )
    due = _due(facts)
    assert due["nis2.progress_report"] == "2027-06-04T08:00:00Z"
    assert due["nis2.final_report"] is None
    assert "nis2.final_report" in due


def test_hipaa_sixty_calendar_days_count_in_the_local_calendar() -> None:
    # 2026-12-31 22:00 at UTC-05:00 is already 1 January in UTC: the local date counts
    est = timezone(timedelta(hours=-5))
    due = _due(
        BreachFacts(aware_at=datetime(2026, 12, 31, 22, 0, tzinfo=est), jurisdictions=["us"], individuals=700)
    )
    assert due["hipaa.individuals"] == "2027-03-01"
    assert due["hipaa.hhs"] == "2027-03-01"


def test_hipaa_under_500_goes_to_the_annual_log_after_the_calendar_year() -> None:
    due = _due(
        BreachFacts(aware_at=datetime(2027, 6, 15, 9, 0, tzinfo=UTC), jurisdictions=["us"], individuals=499)
    )
    assert due["hipaa.hhs_annual_log"] == "2028-02-29"  # 60 days after 31 Dec 2027, a leap year
    assert "hipaa.hhs" not in due
    due = _due(
        BreachFacts(aware_at=datetime(2026, 6, 15, 9, 0, tzinfo=UTC), jurisdictions=["us"], individuals=1)
    )
    assert due["hipaa.hhs_annual_log"] == "2027-03-01"


def test_hipaa_thresholds_500_individuals_and_more_than_500_residents() -> None:
    aware = datetime(2027, 6, 15, 9, 0, tzinfo=UTC)
    due = _due(
        BreachFacts(aware_at=aware, jurisdictions=["us"], individuals=1001, residents={"CA": 500, "NY": 501})
    )
    assert due["hipaa.hhs"] == "2027-08-14"
    assert "hipaa.media:CA" not in due  # exactly 500 residents: not "more than 500"
    assert due["hipaa.media:NY"] == "2027-08-14"
    due = _due(BreachFacts(aware_at=aware, jurisdictions=["us"], individuals=500))  # exactly 500: HHS now
    assert due["hipaa.hhs"] == "2027-08-14"
    assert "hipaa.hhs_annual_log" not in due


def test_unknown_number_assumes_the_earlier_hhs_deadline() -> None:
    due = _due(BreachFacts(aware_at=datetime(2027, 6, 15, 9, 0, tzinfo=UTC), jurisdictions=["us"]))
    assert due["hipaa.hhs"] == "2027-08-14"


def test_bad_facts_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        BreachFacts(aware_at=datetime(2027, 1, 1, 9, 0), jurisdictions=["eu"])
    with pytest.raises(ValueError, match="unknown jurisdiction 'uk'"):
        BreachFacts(aware_at=datetime(2027, 1, 1, 9, 0, tzinfo=UTC), jurisdictions=["uk"])
    with pytest.raises(ValueError, match="residents of CA"):
        BreachFacts(aware_at=datetime(2027, 1, 1, tzinfo=UTC), jurisdictions=["us"], residents={"CA": -1})
    with pytest.raises(ValueError, match=r"residents \(600\) exceed the individuals affected \(300\)"):
        BreachFacts(
            aware_at=datetime(2027, 1, 1, tzinfo=UTC),
            jurisdictions=["us"],
            individuals=300,
            residents={"CA": 600},
        )


def test_clock_states() -> None:
    due = datetime(2027, 1, 3, 21, 0, tzinfo=UTC)
    before, after = due - timedelta(minutes=1), due + timedelta(minutes=1)
    assert clock_state(due, before) is ClockState.DUE
    assert clock_state(due, after) is ClockState.LATE
    assert clock_state(due, after, met_at=before) is ClockState.MET
    assert clock_state(due, after, met_at=after) is ClockState.LATE
    assert clock_state(None, after) is ClockState.OPEN
    # a calendar-day deadline lasts to the end of that day
    assert clock_state(date(2027, 3, 1), datetime(2027, 3, 1, 23, 0, tzinfo=UTC)) is ClockState.DUE
    assert clock_state(date(2027, 3, 1), datetime(2027, 3, 2, 0, 1, tzinfo=UTC)) is ClockState.LATE
