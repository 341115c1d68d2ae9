"""The native Sigma engine: route records to rules by logsource, evaluate each group as one batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from healthsec.detect.rules.sigma.audit import WHERE
from healthsec.detect.rules.sigma.compile import CompiledRule, contains_patterns
from healthsec.detect.rules.sigma.evaluate import Batch
from healthsec.detect.rules.sigma.logsource import ANY_WINDOWS, Target
from healthsec.model import LogRecord

GroupKey = tuple[str | None, int | None, str | None]
Renames = tuple[tuple[str, str], ...]
Route = tuple[Renames, str | None]  # field renames and the row test of the target (audit.WHERE)


@dataclass(frozen=True)
class Hit:
    """Rule ``rule`` matched record ``index`` of the input; ``matched`` holds the fields that made it fire."""

    rule: CompiledRule
    index: int
    matched: Mapping[str, str]


def group_key(rec: LogRecord) -> GroupKey:
    channel = rec.channel.lower() if rec.channel else None
    return channel, rec.event_id, rec.provider


def route_rows(records: Sequence[LogRecord], idx: list[int], where: str | None) -> list[int]:
    """The records of a group that a route's row test keeps (all of them without a test)."""
    if where is None:
        return idx
    test = WHERE[where]
    return [i for i in idx if test(records[i].fields)]


class SigmaEngine:
    """Compiled rules indexed by channel; ``match`` evaluates a batch of records against all of them."""

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.rules = list(rules)
        self._by_channel: dict[str, list[tuple[CompiledRule, Target]]] = {}
        for rule in self.rules:
            for target in rule.targets:
                for ch in target.channels:
                    self._by_channel.setdefault(ch, []).append((rule, target))
        self._routes: dict[GroupKey, list[tuple[Route, list[CompiledRule]]]] = {}
        self._plans: dict[tuple[GroupKey, Route], dict[tuple[str, bool], list[str]]] = {}

    def plan(
        self, key: GroupKey, renames: Route, rules: Sequence[CompiledRule]
    ) -> dict[tuple[str, bool], list[str]]:
        """All 'contains' patterns of one route's rules, per field: the shared index is built from it."""
        cached = self._plans.get((key, renames))
        if cached is None:
            acc: dict[tuple[str, bool], set[str]] = {}
            for rule in rules:
                contains_patterns(rule.root, acc)
            cached = {k: sorted(v) for k, v in acc.items()}
            self._plans[(key, renames)] = cached
        return cached

    def routes(self, key: GroupKey) -> list[tuple[Route, list[CompiledRule]]]:
        """Rules that apply to one (channel, event id, program) group, bucketed by renames and row test."""
        cached = self._routes.get(key)
        if cached is None:
            channel, event_id, program = key
            buckets: dict[Route, list[CompiledRule]] = {}
            seen: set[tuple[str, Route]] = set()
            candidates = self._by_channel.get(channel or "", []) + self._by_channel.get(ANY_WINDOWS, [])
            for rule, target in candidates:
                if target.accepts(channel, event_id, program):
                    renames = (tuple(sorted(target.renames.items())), target.where)
                    if (rule.id, renames) not in seen:
                        seen.add((rule.id, renames))
                        buckets.setdefault(renames, []).append(rule)
            cached = list(buckets.items())
            self._routes[key] = cached
        return cached

    def match(self, records: Sequence[LogRecord], *, explain: bool = True) -> list[Hit]:
        """Every (rule, record) match in ``records``, in record order."""
        groups: dict[GroupKey, list[int]] = {}
        for i, rec in enumerate(records):
            groups.setdefault(group_key(rec), []).append(i)
        hits: list[Hit] = []
        for key, idx in groups.items():
            routes = self.routes(key)
            if not routes:
                continue
            for route, rules in routes:
                rows = route_rows(records, idx, route[1])
                if not rows:
                    continue
                batch = Batch([records[i].fields for i in rows], dict(route[0]), self.plan(key, route, rules))
                for rule in rules:
                    result = batch.node(rule.root)
                    for j in np.flatnonzero(result).tolist():
                        matched = batch.explain(rule.root, j) if explain else {}
                        hits.append(Hit(rule, rows[j], matched))
        hits.sort(key=lambda h: h.index)
        return hits

    def decisions(self, records: Sequence[LogRecord], rule: CompiledRule) -> dict[int, bool]:
        """Rule × record decisions for the records in the rule's logsource (for differential testing)."""
        out: dict[int, bool] = {}
        groups: dict[GroupKey, list[int]] = {}
        for i, rec in enumerate(records):
            groups.setdefault(group_key(rec), []).append(i)
        for key, idx in groups.items():
            for route, rules in self.routes(key):
                if rule not in rules:
                    continue
                rows = route_rows(records, idx, route[1])
                result = Batch([records[i].fields for i in rows], dict(route[0])).node(rule.root)
                for j, flag in enumerate(result.tolist()):
                    out[rows[j]] = bool(flag)
        return out
