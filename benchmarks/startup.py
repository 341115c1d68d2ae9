"""Benchmark of CLI start-up: wall time of ``healthsec --help`` and ``healthsec demo --help``.

Run with ``python benchmarks/startup.py [--runs N]``. Each figure is the median of N fresh processes,
printed beside ``python -c pass`` (the interpreter's own start) measured the same way in this script,
and as a ratio to it. CPU time (user + system of the child) is printed too: it moves less than wall time
when the machine is shared. The target is under 1 s for both commands on the project machine.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time


def _median_seconds(argv: list[str], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of ``runs`` fresh processes."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per figure (median reported)")
    args = parser.parse_args()
    ref, ref_cpu = _median_seconds([sys.executable, "-c", "pass"], args.runs)
    print(f"{'':<24} {'wall':>8} {'cpu':>8}")
    print(f"{'python -c pass':<24} {ref:7.3f}s {ref_cpu:7.3f}s  (reference)")
    for label, extra in (("healthsec --help", ["--help"]), ("healthsec demo --help", ["demo", "--help"])):
        took, cpu = _median_seconds([sys.executable, "-m", "healthsec.cli", *extra], args.runs)
        print(f"{label:<24} {took:7.3f}s {cpu:7.3f}s  ({took / ref:4.1f} x python -c pass, wall)")


if __name__ == "__main__":
    main()
