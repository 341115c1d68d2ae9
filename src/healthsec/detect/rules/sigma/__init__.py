"""A native Sigma engine: pySigma parses, rules compile once and run over batches of LogRecords."""

from healthsec.detect.rules.sigma.compile import (
    Atom,
    CompiledRule,
    Node,
    Unsupported,
    attack_tags,
    compile_rule,
)
from healthsec.detect.rules.sigma.correlate import CompiledCorrelation, run_correlation
from healthsec.detect.rules.sigma.detector import SigmaDetector, entities_of, record_locator
from healthsec.detect.rules.sigma.engine import Hit, SigmaEngine
from healthsec.detect.rules.sigma.logsource import Target, UnsupportedLogsource, targets_for
from healthsec.detect.rules.sigma.ruleset import RuleProblem, RuleSet, parse_rules, validate_rules

__all__ = [
    "Atom",
    "CompiledCorrelation",
    "CompiledRule",
    "Hit",
    "Node",
    "RuleProblem",
    "RuleSet",
    "SigmaDetector",
    "SigmaEngine",
    "Target",
    "Unsupported",
    "UnsupportedLogsource",
    "attack_tags",
    "compile_rule",
    "entities_of",
    "parse_rules",
    "record_locator",
    "run_correlation",
    "targets_for",
    "validate_rules",
]
