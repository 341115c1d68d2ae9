"""Every parser of outside input under hypothesis (issue 18 item 13): real samples from ../shared/data,
mutated; no exception but the parser's own error, no hang (pytest-timeout), bounded memory per input.

The budget is small (``Target.examples``, derandomised so CI sees the same inputs); ``benchmarks/fuzz.py``
runs many more and prints inputs tried and crashes found per parser.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from healthsec.testing.fuzz import Target, run_one, targets
from healthsec.testing.fuzz_strategies import mutated

TARGETS = {t.name: t for t in targets()}
MEMORY_BOUND = 96 * 1024 * 1024  # per input of at most ~100 kB: a parser that buffers more is a finding


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_parser_survives_mutated_real_input(
    name: str, shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    target: Target = TARGETS[name]
    seeds = target.seed_list(shared_data)
    scratch = tmp_path_factory.mktemp(name)
    tried = [0]

    @settings(
        max_examples=target.examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=mutated(seeds, target.json_seeds))
    def check(data: bytes) -> None:
        tried[0] += 1
        outcome = run_one(target, data, scratch, measure_memory=True)
        assert outcome.crash is None, f"{name} crashed on {data[:200]!r}: {outcome.crash}"
        assert outcome.peak_bytes is not None and outcome.peak_bytes < MEMORY_BOUND, (
            f"{name} used {outcome.peak_bytes} bytes on {len(data)} bytes of input"
        )

    check()
    assert tried[0] >= min(target.examples, 5)


def test_seeds_are_real_samples(shared_data: Path) -> None:
    for target in TARGETS.values():
        assert any(target.seed_list(shared_data)), f"{target.name} has no seed from the shared data"
