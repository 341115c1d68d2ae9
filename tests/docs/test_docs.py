"""Docs as tests: the documented commands run in a scratch directory beside ../shared/data and their output
is compared in substance with the page's ``<!-- expect: ... -->`` annotations (see docs_blocks.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from docs_blocks import Block, all_blocks

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = all_blocks(ROOT)
RUN = [b for b in BLOCKS if b.runs]


def test_every_marker_is_understood() -> None:
    """A typo in a marker must not silently turn a documented command into an unchecked one."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if "docs-test" in line and line.strip().startswith("<!--"):
                assert re.match(r"^<!--\s*docs-test:\s*(run|skip)\b.*-->$", line.strip()), f"{page}:{n}"
    for b in BLOCKS:
        if b.mark == "skip":
            assert b.detail, f"{b.id}: a skipped block says why"


def test_report_what_is_not_run(capsys: pytest.CaptureFixture[str]) -> None:
    """Not a check: the count of documented commands the harness does not run (shown with -s)."""
    skipped = [b for b in BLOCKS if b.mark == "skip"]
    unmarked = [b for b in BLOCKS if not b.runs and b.mark is None]
    waiting = sum(len(b.commands) for b in unmarked)
    with capsys.disabled():
        print(
            f"\ndocs: {len(BLOCKS)} command blocks, {len(RUN)} run, {len(skipped)} skipped by marker "
            f"({', '.join(sorted({b.detail.split()[0] for b in skipped}))}), "
            f"{len(unmarked)} console sessions not run yet ({waiting} commands)"
        )
    assert RUN, "the harness runs at least one block"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch checkout beside the shared data: ``../shared/data`` resolves as in the docs."""
    base = tmp_path_factory.mktemp("docs")
    work = base / "repo"
    work.mkdir()
    shared = ROOT.parent / "shared"
    (base / "shared").symlink_to(
        shared if shared.is_dir() else Path(os.environ.get("HEALTHSEC_SHARED_DATA", ""))
    )
    return work


@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_documented_block(block: Block, scratch: Path) -> None:
    bindir = str(Path(sys.executable).parent)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HEALTHSEC_")},
        "PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(
            scratch.parent
        ),  # the embedded default store lives under HOME: empty (the pages' precondition)
        "COLUMNS": "100",
        "HEALTHSEC_DB": str(scratch / f"docs-{block.line}.db"),
    }
    script = "set -e\n" + "\n".join(block.commands) if block.lang == "bash" else "\n".join(block.commands)
    res = subprocess.run(
        ["bash", "-c", script], cwd=scratch, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    output = res.stdout + res.stderr
    assert res.returncode == block.exit_code, f"{block.id} exited {res.returncode}:\n{output[-3000:]}"
    for pattern in block.expect:
        assert re.search(pattern, output, re.MULTILINE), (
            f"{block.id}: no match for {pattern!r} in:\n{output[-3000:]}"
        )
