"""Docs as tests: the documented commands run in a scratch checkout beside ../shared/data and their output
is compared in substance with the page's ``<!-- expect: ... -->`` annotations (see docs_blocks.py).

Each page starts from an empty embedded store (its own HOME) and its blocks run in page order in one
scratch directory, as one terminal session (exported and plain shell variables carry over), so a page
may build on its own earlier blocks (the order it states) but never on another page's.
The scratch checkout links the repository's ``src``, ``tests``, ``benchmarks`` and
``docs`` so that the fixtures the pages name (``tests/docs/fixtures/...``) resolve as in a clone.
``healthsec demo`` runs once per distinct command and is replayed on each page that asks for it, its store
copied in (demo_cache.py): the pages that start from the demo do not each spend minutes re-running it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from demo_cache import install_shim
from docs_blocks import LINKED, Block, all_blocks

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = all_blocks(ROOT)
RUN = [b for b in BLOCKS if b.runs]
SAVED = r"^declare -[-x] [A-Za-z][A-Za-z0-9_]*="  # the session's own variables, not bash's
SHELLS = r"^declare -[-x] (BASH|SHELL|SHLVL|PWD|OLDPWD|PPID|UID|EUID|HOST|MACHTYPE|OSTYPE|IFS|OPT|PS4|TERM|_)"


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
    """Not a check: the count of documented command blocks the harness does not run (shown with -s)."""
    skipped = [b for b in BLOCKS if b.mark == "skip"]
    with capsys.disabled():
        print(f"\ndocs: {len(BLOCKS)} command blocks, {len(RUN)} run, {len(skipped)} skipped by marker:")
        for b in skipped:
            print(f"  {b.id}: {b.detail}")
    assert RUN, "the harness runs at least one block"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the page checkouts beside the shared data: ``../shared/data`` resolves as in the docs."""
    base = tmp_path_factory.mktemp("docs")
    shared = ROOT.parent / "shared"
    (base / "shared").symlink_to(
        shared if shared.is_dir() else Path(os.environ.get("HEALTHSEC_SHARED_DATA", ""))
    )
    (base / "bin").mkdir()
    install_shim(base / "bin")
    return base


def page_dir(scratch: Path, block: Block) -> Path:
    """The page's own working directory (a fresh one per page) with the linked checkout inside."""
    cwd = scratch / ("page-" + re.sub(r"\W", "_", block.page))
    if not cwd.exists():
        cwd.mkdir()
        (cwd / "home").mkdir()
        for name in LINKED:
            (cwd / name).symlink_to(ROOT / name)
    return cwd


@pytest.mark.timeout(1500)  # a block may run the demo: minutes on a loaded 2-core machine
@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_documented_block(block: Block, scratch: Path) -> None:
    cwd = page_dir(scratch, block)
    bindir = str(Path(sys.executable).parent)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HEALTHSEC_", "XDG_"))},
        "PATH": f"{scratch / 'bin'}:{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "DOCS_HEALTHSEC": str(Path(bindir) / "healthsec"),  # the shim's real healthsec (demo_cache.py)
        "DOCS_PYTHON": sys.executable,
        "DOCS_DEMO_CACHE": str(scratch),
        "DOCS_ROOT": str(ROOT),
        "HOME": str(cwd / "home"),  # the embedded default store lives under HOME: empty per page
        "COLUMNS": "100",
    }
    rc_file, env_file = cwd / ".exit-codes", cwd / ".variables"
    rc_file.write_text("")
    # a page is one terminal session: variables a block sets (INC=...) are there for the next block
    keep = (
        f"[ -f {env_file} ] && . {env_file}\n"
        f"trap \"declare -p | grep -E '{SAVED}' | grep -vE '{SHELLS}' > {env_file}\" EXIT\n"
    )
    if block.lang == "bash":
        script = keep + "set -e\n" + block.text + f"\nprintf '0 ' >> {rc_file}\n"
    else:
        script = keep + "".join(f"{cmd}\nprintf '%s ' $? >> {rc_file}\n" for cmd in block.commands)
    res = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=1200, check=False
    )
    output = res.stdout + res.stderr
    codes = [int(c) for c in rc_file.read_text().split()] or [res.returncode]
    want = block.exit_codes
    assert codes == want, f"{block.id} exited {codes} (want {want}):\n{output[-3000:]}"
    for pattern in block.expect:
        assert re.search(pattern, output, re.MULTILINE), (
            f"{block.id}: no match for {pattern!r} in:\n{output[-3000:]}"
        )


def test_demo_runs_are_shared_only_when_they_are_the_same() -> None:
    """The shared demo run (demo_cache.py): --db and HEALTHSEC_DB name one store; any other setting or
    argument is another run."""
    from demo_cache import demo_key

    base = demo_key(["--seed", "7", "--out", "demo", "--db", "demo.db"], {})
    assert demo_key(["--seed", "7", "--out", "demo"], {"HEALTHSEC_DB": "demo.db"}) == base
    assert demo_key(["--seed", "7", "--out", "demo", "--db=demo.db"], {"HEALTHSEC_DB": "x.db"}) == base
    assert demo_key(["--seed", "8", "--out", "demo", "--db", "demo.db"], {}) != base
    assert demo_key(["--seed", "7", "--out", "demo"], {}) != base
    assert (
        demo_key(["--seed", "7", "--out", "demo", "--db", "demo.db"], {"HEALTHSEC_JURISDICTIONS": "[]"})
        != base
    )
