"""Differentially private counts (OpenDP Laplace mechanism) for shared aggregates, with a tracked budget."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


class BudgetExhausted(RuntimeError):
    """Raised instead of answering when a release would spend more epsilon than is left."""


@dataclass(slots=True)
class PrivacyBudget:
    """Epsilon granted for one sharing community and period; every release spends from it."""

    total: float
    spent: float = 0.0
    releases: list[tuple[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.total > 0:
            raise ValueError("privacy budget must be a positive epsilon")

    @property
    def remaining(self) -> float:
        return max(self.total - self.spent, 0.0)

    def spend(self, epsilon: float, purpose: str) -> None:
        if not epsilon > 0:
            raise ValueError("epsilon must be positive")
        if self.spent + epsilon > self.total + 1e-12:
            raise BudgetExhausted(
                f"{purpose}: needs epsilon {epsilon:g} but only {self.remaining:g} of {self.total:g} is left"
            )
        self.spent += epsilon
        self.releases.append((purpose, epsilon))


def dp_counts(
    counts: Mapping[str, int],
    epsilon: float,
    budget: PrivacyBudget,
    *,
    contributions: int = 1,
    purpose: str = "counts",
) -> dict[str, int]:
    """Noisy counts over a fixed, public set of keys (e.g. ATT&CK technique ids), clamped at zero.

    ``contributions`` bounds how many counts one record (one incident, one organisation) can change,
    which is the L1 sensitivity. The budget is charged before anything is computed, and the charge is
    the privacy loss OpenDP itself reports for the measurement.
    """
    if contributions < 1:
        raise ValueError("contributions must be at least 1")
    import opendp.prelude as dp  # OpenDP (and the scikit-learn it pulls in) loads only when counts are made

    dp.enable_features("contrib")  # the Laplace measurement on integers lives in OpenDP's contrib set
    keys = sorted(counts)
    space = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
    scale = contributions / epsilon
    meas = space >> dp.m.then_laplace(scale=scale)
    loss = float(meas.map(contributions))
    budget.spend(loss, purpose)
    noisy = meas([int(counts[k]) for k in keys])
    return {k: max(int(v), 0) for k, v in zip(keys, noisy, strict=True)}
