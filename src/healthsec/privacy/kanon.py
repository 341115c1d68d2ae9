"""k-anonymity check on a table of records: report every equivalence class smaller than k."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class EquivalenceClass:
    """Records sharing one combination of quasi-identifier values, and how many there are."""

    values: tuple[tuple[str, Any], ...]
    size: int


@dataclass(frozen=True, slots=True)
class KAnonymityReport:
    """Outcome of a k-anonymity check; ``offending`` lists the classes below k, smallest first."""

    k: int
    quasi_identifiers: tuple[str, ...]
    records: int
    classes: int
    offending: tuple[EquivalenceClass, ...]
    achieved_k: int | None  # smallest class size, the k the table really has; None for an empty table

    @property
    def ok(self) -> bool:
        return not self.offending

    def describe(self) -> str:
        if self.ok:
            return f"{self.records} records are {self.k}-anonymous over {', '.join(self.quasi_identifiers)}"
        worst = self.offending[0]
        shown = ", ".join(f"{k}={v!r}" for k, v in worst.values)
        return (
            f"{len(self.offending)} of {self.classes} classes have fewer than {self.k} records "
            f"(smallest: {worst.size} with {shown})"
        )


def check_k_anonymity(
    records: Sequence[Mapping[str, Any]], quasi_identifiers: Sequence[str], k: int
) -> KAnonymityReport:
    """Group records by their quasi-identifier values; a missing value forms its own group (None)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    if not quasi_identifiers:
        raise ValueError("name at least one quasi-identifier column")
    qi = tuple(quasi_identifiers)
    groups = Counter(tuple(_hashable(r.get(c)) for c in qi) for r in records)
    offending = sorted(
        (EquivalenceClass(tuple(zip(qi, key, strict=True)), n) for key, n in groups.items() if n < k),
        key=lambda c: (c.size, repr(c.values)),
    )
    return KAnonymityReport(
        k=k,
        quasi_identifiers=qi,
        records=len(records),
        classes=len(groups),
        offending=tuple(offending),
        achieved_k=min(groups.values()) if groups else None,
    )


def _hashable(value: Any) -> Any:
    if isinstance(value, list | set | tuple):
        return tuple(sorted(map(repr, value)))
    if isinstance(value, dict):
        return tuple(sorted((str(k), repr(v)) for k, v in value.items()))
    return value
