"""Shared, loaded-once SigmaHQ rule sets for the truth checks (loading ~3,000 rules takes seconds)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from healthsec.detect.rules.sigma import RuleSet
from healthsec.ingest.logs.rulefiles import load_rules

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def sigma_dir(shared_data: Path) -> Path:
    return shared_data / "sigma-rules"


@pytest.fixture(scope="session")
def all_rules(sigma_dir: Path) -> RuleSet:
    """Every rule folder that regression data refers to."""
    return load_rules(
        [sigma_dir / "rules", sigma_dir / "rules-emerging-threats", sigma_dir / "rules-threat-hunting"]
    )


@pytest.fixture(scope="session")
def bench() -> ModuleType:
    """benchmarks/sigma.py, which holds the pySigma-SQLite reference path shared with the benchmark."""
    spec = importlib.util.spec_from_file_location("healthsec_sigma_bench", REPO / "benchmarks" / "sigma.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
