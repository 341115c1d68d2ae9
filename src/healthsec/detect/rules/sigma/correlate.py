"""Sigma correlation rules (event_count, value_count, temporal) over the matches of their base rules."""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationRule, SigmaCorrelationType

from healthsec.detect.rules.sigma.compile import CompiledRule, Unsupported, attack_tags
from healthsec.detect.rules.sigma.evaluate import as_text

_OPS: dict[str, Callable[[float, float], bool]] = {
    "LT": operator.lt,
    "LTE": operator.le,
    "GT": operator.gt,
    "GTE": operator.ge,
    "EQ": operator.eq,
    "NEQ": operator.ne,
}
SUPPORTED = {
    SigmaCorrelationType.EVENT_COUNT,
    SigmaCorrelationType.VALUE_COUNT,
    SigmaCorrelationType.TEMPORAL,
}


@dataclass(frozen=True)
class CompiledCorrelation:
    """A correlation rule linked to its compiled base rules."""

    id: str
    title: str
    level: str | None
    type: str
    rule_ids: tuple[str, ...]
    group_by: tuple[str, ...]
    aliases: Mapping[str, Mapping[str, str]]  # alias -> base rule id -> field
    seconds: int
    op: str
    count: float
    fieldref: str | None
    techniques: tuple[str, ...]
    tactics: tuple[str, ...]

    def test(self, value: float) -> bool:
        return _OPS[self.op](value, self.count)


@dataclass(frozen=True)
class Match:
    """One base-rule match as the correlator sees it."""

    rule_id: str
    ts: datetime
    record: int
    fields: Mapping[str, object]


def compile_correlation(
    corr: SigmaCorrelationRule, by_id: Mapping[str, CompiledRule], by_name: Mapping[str, CompiledRule]
) -> CompiledCorrelation:
    if corr.type not in SUPPORTED:
        raise Unsupported(f"correlation type {corr.type.name.lower()}")
    if not isinstance(corr.condition, SigmaCorrelationCondition):
        raise Unsupported("extended (boolean) correlation conditions")
    ids: list[str] = []
    for ref in corr.rules or []:
        target = by_name.get(ref.reference) or by_id.get(ref.reference)
        if target is None:
            raise Unsupported(f"referenced rule {ref.reference!r} is not loaded")
        ids.append(target.id)
    aliases: dict[str, dict[str, str]] = {}
    for name, alias in corr.aliases.aliases.items():
        for ref, fld in alias.mapping.items():
            target = by_name.get(ref.reference) or by_id.get(ref.reference)
            if target is not None:
                aliases.setdefault(name, {})[target.id] = fld
    fieldref = corr.condition.fieldref
    if isinstance(fieldref, list):
        if len(fieldref) != 1:
            raise Unsupported("value_count over several fields")
        fieldref = fieldref[0]
    techniques, tactics = attack_tags([str(t) for t in (corr.tags or [])])
    return CompiledCorrelation(
        id=str(corr.id) if corr.id else corr.title,
        title=corr.title,
        level=corr.level.name.lower() if corr.level is not None else None,
        type=corr.type.name.lower(),
        rule_ids=tuple(ids),
        group_by=tuple(corr.group_by or ()),
        aliases=aliases,
        seconds=corr.timespan.seconds,
        op=corr.condition.op.name,
        count=float(corr.condition.count),
        fieldref=fieldref,
        techniques=techniques,
        tactics=tactics,
    )


def _key(corr: CompiledCorrelation, m: Match) -> tuple[str | None, ...]:
    out: list[str | None] = []
    for g in corr.group_by:
        fld = corr.aliases.get(g, {}).get(m.rule_id, g)
        out.append(as_text(m.fields.get(fld)))
    return tuple(out)


def run_correlation(corr: CompiledCorrelation, matches: Sequence[Match]) -> list[list[Match]]:
    """Windows of base matches (per group-by key) that satisfy the correlation condition.

    Hand-written: pySigma only converts correlations to backend queries; it has no evaluator. After a
    window fires, counting restarts after it, so one burst gives one alert.
    """
    wanted = set(corr.rule_ids)
    groups: dict[tuple[str | None, ...], list[Match]] = {}
    for m in sorted((m for m in matches if m.rule_id in wanted), key=lambda m: (m.ts, m.record)):
        groups.setdefault(_key(corr, m), []).append(m)
    fired: list[list[Match]] = []
    for items in groups.values():
        window: deque[Match] = deque()
        for m in items:
            window.append(m)
            while (m.ts - window[0].ts).total_seconds() > corr.seconds:
                window.popleft()
            if _satisfied(corr, window):
                fired.append(list(window))
                window.clear()
    return fired


def _satisfied(corr: CompiledCorrelation, window: deque[Match]) -> bool:
    if corr.type == "event_count":
        return corr.test(len(window))
    if corr.type == "value_count":
        assert corr.fieldref is not None
        values = {as_text(m.fields.get(corr.fieldref)) for m in window} - {None}
        return corr.test(len(values))
    present = {m.rule_id for m in window}  # temporal: every referenced rule seen in the window
    return len(present) == len(set(corr.rule_ids)) and corr.test(len(present))
