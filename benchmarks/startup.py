"""Benchmark of CLI start-up: wall time of ``healthsec --help`` and ``healthsec demo --help``.

Run with ``python benchmarks/startup.py [--runs N]``. Each figure is the median of N fresh processes,
printed beside ``python -c pass`` (the interpreter's own start) measured the same way in this script,
and as a ratio to it. The target is under 1 s for both commands on the project machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def _median_seconds(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per figure (median reported)")
    args = parser.parse_args()
    ref = _median_seconds([sys.executable, "-c", "pass"], args.runs)
    print(f"python -c pass                 {ref:6.3f} s  (reference)")
    for label, extra in (("healthsec --help", ["--help"]), ("healthsec demo --help", ["demo", "--help"])):
        took = _median_seconds([sys.executable, "-m", "healthsec.cli", *extra], args.runs)
        print(f"{label:<30} {took:6.3f} s  ({took / ref:5.1f} x python -c pass)")


if __name__ == "__main__":
    main()
