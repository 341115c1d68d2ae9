"""A non-editable install (``pip install .`` into a fresh virtual environment) works outside the checkout:
bundled data through the package, external data (SigmaHQ rules) through settings with a clear message
when absent, and the same smoke test as the editable install."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SAMPLE = "rules/windows/process_creation/proc_creation_win_bitsadmin_download"


def _run(exe: Path, *args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_non_editable_install_runs_outside_the_checkout(tmp_path: Path, shared_data: Path) -> None:
    # a wheel built from a copy of the sources (nothing written into the checkout), with this
    # interpreter's setuptools; the fresh environment takes its dependencies from the system site packages
    src = tmp_path / "src"
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    wheel = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", "dist", "."],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert wheel.returncode == 0, wheel.stderr[-2000:]
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    built = subprocess.run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            *map(str, (src / "dist").glob("*.whl")),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    where = tmp_path / "elsewhere"  # no ../shared/data from here
    where.mkdir()
    env = {
        "PATH": f"{env_dir / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "COLUMNS": "100",
        "HEALTHSEC_DB": str(tmp_path / "x.db"),
    }
    located = _run(py, "-c", "import healthsec; print(healthsec.__file__)", cwd=where, env=env)
    assert str(env_dir) in located.stdout, located.stdout + located.stderr  # not the source tree
    exe = env_dir / "bin" / "healthsec"
    assert _run(exe, "--help", cwd=where, env=env).returncode == 0

    detectors = _run(exe, "detectors", "list", cwd=where, env=env)
    assert detectors.returncode == 0, detectors.stderr
    assert "sigma" in detectors.stdout and "unavailable" in detectors.stdout  # no rules found: said so

    rules_missing = _run(exe, "rules", "list", cwd=where, env=env)
    assert rules_missing.returncode == 1
    assert rules_missing.stderr.strip().startswith("error: no Sigma rules"), rules_missing.stderr
    assert "HEALTHSEC_SHARED_DATA" in rules_missing.stderr

    sample = shared_data / "sigma-rules" / "regression_data" / SAMPLE
    evtx = next(sample.glob("*.evtx.gz"))
    rule = shared_data / "sigma-rules" / f"{SAMPLE}.yml"
    out = tmp_path / "alerts.jsonl"
    detected = _run(
        exe, "detect", "logs", str(evtx), "--rules", str(rule), "--out", str(out), cwd=where, env=env
    )
    assert detected.returncode == 0, detected.stdout + detected.stderr
    assert out.read_text().count("\n") >= 1, detected.stdout  # the regression sample's true positive

    with_data = {**env, "HEALTHSEC_SHARED_DATA": str(shared_data)}
    listed = _run(exe, "detectors", "list", cwd=where, env=with_data)
    assert listed.returncode == 0
    assert "no Sigma rules found" not in listed.stdout
