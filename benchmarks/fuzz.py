"""Fuzzing report: inputs tried, parser errors, crashes, hangs and peak memory per parser of outside input.

Runs the targets of ``healthsec.testing.fuzz`` (the same the test suite runs with a small budget) under
hypothesis with random (not derandomised) mutations of real samples from ../shared/data. A crash is any
exception other than the parser's own error; a hang is an input still running after ``--hang-s`` seconds
(SIGALRM). Prints one line per parser and every crash with the input's first bytes. Exit status 0 always:
the figures are the product (the tests are the pass/fail).

    python3 benchmarks/fuzz.py [--examples 500] [--flat] [--only hl7-file csaf] [--memory]
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from healthsec.testing.fuzz import Outcome, Target, run_one, targets
from healthsec.testing.fuzz_strategies import mutated

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


class Hang(BaseException):  # not an Exception: run_one must not count it as the parser's crash
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang()


def fuzz_target(target: Target, examples: int, hang_s: int, memory: bool, found: list[str]) -> dict[str, int]:
    """Run ``examples`` mutated inputs through one target; count outcomes and note every crash or hang."""
    seeds = target.seed_list(DATA)
    counts = {"inputs": 0, "errors": 0, "crashes": 0, "hangs": 0, "peak": 0}
    with tempfile.TemporaryDirectory() as scratch:
        # warm-up, not counted: the first input pays one-time imports (fhir.resources, the CSAF schema
        # validator), which under tracemalloc on a loaded machine took longer than the hang bound
        run_one(target, seeds[0], Path(scratch))

        @settings(
            max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(data=mutated(seeds, target.json_seeds))
        def explore(data: bytes) -> None:
            counts["inputs"] += 1
            signal.alarm(hang_s)
            try:
                outcome = run_one(target, data, Path(scratch), measure_memory=memory)
            except Hang:
                outcome = Outcome(False, None, None)
                counts["hangs"] += 1
                found.append(f"{target.name}: HANG on {data[:120]!r}")
            finally:
                signal.alarm(0)
            counts["errors"] += outcome.allowed_error
            counts["peak"] = max(counts["peak"], outcome.peak_bytes or 0)
            if outcome.crash:
                counts["crashes"] += 1
                found.append(f"{target.name}: {outcome.crash} on {data[:120]!r}")

        explore()
    return counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=500, help="inputs per parser")
    ap.add_argument("--only", nargs="*", default=None, help="parser names")
    ap.add_argument("--hang-s", type=int, default=20)
    ap.add_argument(
        "--flat", action="store_true", help="--examples inputs for every parser (default: scaled by its cost)"
    )
    ap.add_argument(
        "--memory", action="store_true", help="measure peak memory per input (tracemalloc, slower)"
    )
    args = ap.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    print(f"{'parser':<18}{'inputs':>8}{'errors':>8}{'crashes':>9}{'hangs':>7}{'peak MB':>9}{'cpu s':>8}")
    found: list[str] = []
    for target in targets():
        if args.only and target.name not in args.only:
            continue
        examples = args.examples if args.flat else max(args.examples * target.examples // 60, 5)
        started = time.process_time()
        counts = fuzz_target(target, examples, args.hang_s, args.memory, found)
        cpu = time.process_time() - started
        peak = f"{counts['peak'] / 1e6:.1f}" if args.memory else "-"
        print(
            f"{target.name:<18}{counts['inputs']:>8}{counts['errors']:>8}{counts['crashes']:>9}"
            f"{counts['hangs']:>7}{peak:>9}{cpu:>8.1f}",
            flush=True,
        )
    print(f"\n{len(found)} crash(es) or hang(s)")
    for line in found[:50]:
        print(" ", line)
    sys.exit(0)


if __name__ == "__main__":
    main()
