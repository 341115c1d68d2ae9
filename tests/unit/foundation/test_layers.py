"""The layer rules of ARCHITECTURE.md, checked by import-linter, and the environment read in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from importlinter import configuration
from importlinter.application.use_cases import lint_imports

ROOT = Path(__file__).resolve().parents[3]
SRC = ROOT / "src" / "healthsec"


def test_import_linter_contracts_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    configuration.configure()  # what the lint-imports command does before linting
    kept = lint_imports(config_filename=str(ROOT / "pyproject.toml"), cache_dir=None, no_logo=True)
    report = capsys.readouterr().out
    assert kept, report
    for contract in ("layers", "the core", "model imports nothing", "no import cycles"):
        assert contract in report


def _environment_reads(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb", "putenv"):
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                lines.append(node.lineno)
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(a.name in ("environ", "getenv", "environb", "putenv") for a in node.names)
        ):
            lines.append(node.lineno)
    return lines


def test_only_config_reads_the_environment() -> None:
    offenders = {
        str(p.relative_to(ROOT)): lines
        for p in sorted(SRC.rglob("*.py"))
        if p != SRC / "config.py" and (lines := _environment_reads(p))
    }
    assert not offenders, f"read the environment through healthsec.config (env_var / Settings): {offenders}"


def test_the_environment_check_sees_every_spelling(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import os\nfrom os import getenv\na = os.environ['X']\nb = os.getenv('Y')\n")
    assert _environment_reads(probe) == [2, 3, 4]
