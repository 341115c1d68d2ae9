"""Read Sigma rule files and folders (the file I/O the detection core must not do)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from healthsec.detect.rules.sigma import RuleSet, SigmaDetector, parse_rules


def rule_texts(paths: Iterable[Path]) -> Iterator[tuple[str, str]]:
    """(path, text) for each ``.yml``/``.yaml`` file, folders searched recursively in sorted order."""
    for path in paths:
        files = [path]
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml"))
        for f in files:
            yield str(f), f.read_text(encoding="utf-8", errors="replace")


def load_rules(paths: Iterable[Path]) -> RuleSet:
    """Parse and compile every rule under ``paths``; problems are in ``RuleSet.problems``."""
    return parse_rules(rule_texts(paths))


def load_sigma_detector(paths: Iterable[Path]) -> SigmaDetector:
    """A SigmaDetector over the rules in these files or folders."""
    return SigmaDetector(load_rules(paths))
