"""SigmaHQ regression data: every true-positive log must fire the rule it belongs to (EVTX and JSON)."""

from __future__ import annotations

from pathlib import Path

import yaml

from healthsec.detect.rules.sigma import RuleSet, SigmaEngine
from healthsec.ingest.logs import LogFileSource
from healthsec.model import LogRecord, ParseError


def cases(sigma_dir: Path) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for info in sorted(sigma_dir.glob("regression_data/**/info.yml")):
        doc = yaml.safe_load(info.read_text())
        rule_id = doc["rule_metadata"][0]["id"]
        for test in doc.get("regression_tests_info") or []:
            if test["type"] == "evtx":
                out.append((rule_id, sigma_dir / (test["path"] + ".gz")))
    return out


def test_every_regression_true_positive_fires_its_rule(sigma_dir: Path, all_rules: RuleSet) -> None:
    by_id = {r.id: r for r in all_rules.rules}
    todo = cases(sigma_dir)
    assert len(todo) == 202  # SOURCE.md: 202 EVTX true-positive samples
    missed: list[str] = []
    for rule_id, evtx in todo:
        assert rule_id in by_id, (
            f"{rule_id} not loaded: {[p for p in all_rules.problems if p.rule_id == rule_id]}"
        )
        engine = SigmaEngine([by_id[rule_id]])
        for path in (evtx, evtx.with_name(evtx.name.removesuffix(".evtx.gz") + ".json")):
            items = list(LogFileSource(path).read())
            assert not [i for i in items if isinstance(i, ParseError)], path
            records = [i for i in items if isinstance(i, LogRecord)]
            if not engine.match(records):
                missed.append(f"{rule_id} {by_id[rule_id].title} on {path.name}")
    assert missed == []
