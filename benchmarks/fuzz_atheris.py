"""Coverage-guided fuzzing (atheris / libFuzzer) of one target of ``healthsec.testing.fuzz``.

Optional: ``pip install atheris`` (a wheel exists for CPython 3.11 on x86-64). The seeds are written to a
corpus folder first, so libFuzzer starts from the real samples; the healthsec modules are instrumented for
coverage. A crash (any exception but the target's allowed error) stops the run with the input saved by
libFuzzer as ``crash-*``; the last line says how many inputs ran.

    python3 benchmarks/fuzz_atheris.py mqtt-payload -max_total_time=60 -rss_limit_mb=2048
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["healthsec"]):
    from healthsec.testing.fuzz import run_one, targets

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    name, libfuzzer_args = sys.argv[1], sys.argv[2:]
    with atheris.instrument_imports(include=["healthsec"]):  # targets() imports the allowed errors' modules
        target = next(t for t in targets() if t.name == name)
    corpus = Path(tempfile.mkdtemp(prefix=f"corpus-{name}-"))
    for i, seed in enumerate(target.seed_list(DATA)):
        (corpus / f"seed-{i}").write_bytes(seed)
    scratch = Path(tempfile.mkdtemp(prefix=f"scratch-{name}-"))
    with atheris.instrument_imports(include=["healthsec"]):  # the modules a target imports on first use
        for seed in target.seed_list(DATA):
            run_one(target, seed, scratch)

    def one_input(data: bytes) -> None:
        outcome = run_one(target, data, scratch)
        if outcome.crash:
            raise RuntimeError(f"{name} crashed: {outcome.crash}")

    atheris.Setup([sys.argv[0], *libfuzzer_args, str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
