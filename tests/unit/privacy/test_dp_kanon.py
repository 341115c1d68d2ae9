"""OpenDP noisy counts spend a tracked budget; k-anonymity names the offending classes."""

from __future__ import annotations

import pytest

from healthsec.privacy.dp import BudgetExhausted, PrivacyBudget, dp_counts
from healthsec.privacy.kanon import check_k_anonymity


def test_budget_is_spent_and_refused() -> None:
    budget = PrivacyBudget(total=1.0)
    out = dp_counts({"T1486": 40, "T1059": 0}, 0.4, budget, purpose="by technique")
    assert set(out) == {"T1486", "T1059"}
    assert all(v >= 0 for v in out.values())
    assert budget.spent == pytest.approx(0.4)
    dp_counts({"T1486": 40}, 0.6, budget)
    assert budget.remaining == pytest.approx(0.0)
    with pytest.raises(BudgetExhausted, match=r"needs epsilon 0\.1 but only 0 of 1 is left"):
        dp_counts({"T1486": 40}, 0.1, budget, purpose="again")
    assert budget.releases == [("by technique", pytest.approx(0.4)), ("counts", pytest.approx(0.6))]


def test_contributions_scale_the_charge_not_the_answer_keys() -> None:
    budget = PrivacyBudget(total=5.0)
    dp_counts({"a": 1}, 1.0, budget, contributions=3)
    assert budget.spent == pytest.approx(1.0)
    with pytest.raises(ValueError, match="contributions"):
        dp_counts({"a": 1}, 1.0, budget, contributions=0)
    with pytest.raises(ValueError, match="positive"):
        PrivacyBudget(total=0)


def test_noise_is_calibrated() -> None:
    budget = PrivacyBudget(total=1e6)
    truth = 1000
    draws = [dp_counts({"x": truth}, 1.0, budget)["x"] for _ in range(400)]
    mean_abs = sum(abs(d - truth) for d in draws) / len(draws)
    assert 0.5 < mean_abs < 1.6  # Laplace(scale=1) has mean absolute deviation 1
    assert len(set(draws)) > 3


def test_k_anonymity_reports_offenders() -> None:
    rows = [
        {"sector": "hospital", "region": "north", "technique": "T1486"},
        {"sector": "hospital", "region": "north", "technique": "T1486"},
        {"sector": "hospital", "region": "north", "technique": "T1486"},
        {"sector": "clinic", "region": "south", "technique": "T1486"},
        {"sector": "clinic", "region": None, "technique": "T1059"},
    ]
    report = check_k_anonymity(rows, ["sector", "region"], k=2)
    assert not report.ok
    assert report.achieved_k == 1
    assert [dict(c.values) for c in report.offending] == [
        {"sector": "clinic", "region": "south"},
        {"sector": "clinic", "region": None},
    ]
    assert "2 of 3 classes have fewer than 2 records" in report.describe()
    assert check_k_anonymity(rows[:3], ["sector", "region"], k=3).ok
    with pytest.raises(ValueError, match="quasi-identifier"):
        check_k_anonymity(rows, [], k=2)
