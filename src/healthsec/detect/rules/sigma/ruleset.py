"""Parse Sigma rule texts with pySigma and compile them; every rule that cannot run is reported with why."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.validation import SigmaValidator
from sigma.validators.core import validators as core_validators

from healthsec.detect.rules.sigma.compile import CompiledRule, Unsupported, compile_rule
from healthsec.detect.rules.sigma.correlate import CompiledCorrelation, compile_correlation
from healthsec.detect.rules.sigma.logsource import UnsupportedLogsource


@dataclass(frozen=True)
class RuleProblem:
    """A rule that was not loaded: where it is, which rule, and the reason (parse error or unsupported)."""

    locator: str
    reason: str
    kind: str  # "error" (cannot be parsed / invalid) or "unsupported" (valid Sigma we cannot evaluate)
    rule_id: str | None = None
    title: str | None = None


@dataclass
class RuleSet:
    """The compiled rules, the compiled correlation rules and the problems, from one load."""

    rules: list[CompiledRule] = field(default_factory=list)
    correlations: list[CompiledCorrelation] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)
    locators: dict[str, str] = field(default_factory=dict)  # rule id -> where it came from

    @property
    def loaded(self) -> int:
        return len(self.rules) + len(self.correlations)


def _where(exc: SigmaError, locator: str) -> str:
    src = getattr(exc, "source", None)
    line = getattr(src, "line", None) if src is not None else None
    return f"{locator}:{line}" if line else locator


def _yaml_documents(text: str) -> list[Any]:
    """The YAML documents of one file, as pySigma's ``from_yaml`` reads them (``safe_load_all``) but with
    libyaml's C parser where PyYAML has it: parsing was 78 % of loading the SigmaHQ set (3,614 files)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return list(yaml.load_all(text, Loader=loader))


def parse_rules(sources: Iterable[tuple[str, str]]) -> RuleSet:
    """Parse and compile ``(locator, yaml_text)`` pairs; correlation rules are linked after all are read."""
    out = RuleSet()
    pending: list[tuple[str, SigmaCorrelationRule]] = []
    by_name: dict[str, CompiledRule] = {}
    for locator, text in sources:
        try:
            collection = SigmaCollection.from_dicts(_yaml_documents(text), collect_errors=True)
        except SigmaError as exc:
            out.problems.append(RuleProblem(_where(exc, locator), f"cannot parse: {exc}", "error"))
            continue
        except Exception as exc:  # YAML scanner errors and the like: report, never crash the load
            out.problems.append(RuleProblem(locator, f"cannot parse: {type(exc).__name__}: {exc}", "error"))
            continue
        for err in collection.errors:
            out.problems.append(RuleProblem(_where(err, locator), f"invalid rule: {err}", "error"))
        for rule in collection.rules:
            rid = str(rule.id) if getattr(rule, "id", None) else None
            title = getattr(rule, "title", None)
            if getattr(rule, "errors", None):
                out.problems.extend(
                    RuleProblem(_where(err, locator), f"invalid rule: {err}", "error", rid, title)
                    for err in rule.errors
                )
                continue
            if isinstance(rule, SigmaCorrelationRule):
                pending.append((locator, rule))
                continue
            if not isinstance(rule, SigmaRule):
                out.problems.append(
                    RuleProblem(locator, f"unsupported item {type(rule).__name__}", "unsupported", rid, title)
                )
                continue
            try:
                compiled = compile_rule(rule)
            except (Unsupported, UnsupportedLogsource) as exc:
                out.problems.append(RuleProblem(locator, str(exc), "unsupported", rid, title))
                continue
            except SigmaError as exc:
                out.problems.append(
                    RuleProblem(_where(exc, locator), f"invalid rule: {exc}", "error", rid, title)
                )
                continue
            out.rules.append(compiled)
            out.locators[compiled.id] = locator
            if rule.name:
                by_name[str(rule.name)] = compiled
    by_id = {r.id: r for r in out.rules}
    for locator, corr in pending:
        try:
            compiled_corr = compile_correlation(corr, by_id, by_name)
        except (Unsupported, SigmaError) as exc:
            out.problems.append(
                RuleProblem(
                    locator,
                    f"correlation: {exc}",
                    "unsupported",
                    str(corr.id) if corr.id else None,
                    corr.title,
                )
            )
            continue
        out.correlations.append(compiled_corr)
        out.locators[compiled_corr.id] = locator
    return out


NETWORK_VALIDATORS = frozenset({"attacktag", "d3_fendtag"})


def validate_rules(sources: Iterable[tuple[str, str]]) -> list[RuleProblem]:
    """pySigma's own validators (dangling detections, tag formats, wildcards ...) as 'warning' problems."""
    # attacktag / d3fend tag checks download MITRE data at run time: no network here (air-gapped sites)
    offline = [v for name, v in core_validators.items() if name not in NETWORK_VALIDATORS]
    validator = SigmaValidator(offline)
    out: list[RuleProblem] = []
    for locator, text in sources:
        try:
            collection = SigmaCollection.from_dicts(_yaml_documents(text), collect_errors=True)
        except Exception:  # noqa: S112 - parse_rules reports it with the reason; do not say it twice
            continue
        rules = [r for r in collection.rules if isinstance(r, SigmaRule)]
        for issue in validator.validate_rules(iter(rules)):
            for rule in issue.rules:
                rid = str(rule.id) if getattr(rule, "id", None) else None
                out.append(
                    RuleProblem(
                        locator,
                        f"{type(issue).__name__}: {issue.description}",
                        "warning",
                        rid,
                        getattr(rule, "title", None),
                    )
                )
    return out
