"""``healthsec demo`` run once per distinct command for the whole docs harness, replayed on every page.

Several pages start from the demo's store (`healthsec demo --seed 7 ...`), and the demo is most of the
harness's time. The harness puts a ``healthsec`` shim first on PATH: any other command goes straight to
the real one; ``healthsec demo ARGS`` comes here. The first page that asks for a given demo (its arguments
and its ``HEALTHSEC_*`` environment: the settings the demo's pipeline and playbooks read) runs the real
command once, in a directory laid out like a page's (the linked checkout, its own empty HOME, beside
``../shared``). Every page that asks for the same demo, the first included, then gets what that run left:
the files it wrote (``--out`` folder, ``--db`` file, or the embedded store under HOME) copied into the
page's directory, its output (paths of the run's directory spelled as the page's) and its exit code. So
each page still works on its own copy of a real demo's store and checks the demo's real output.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from docs_blocks import LINKED


def demo_key(args: list[str], env: dict[str, str]) -> str:
    """What makes two demo runs the same: the arguments, the store they name (``--db X`` and
    ``HEALTHSEC_DB=X`` name the same one: the option wins over the variable) and the other settings from
    the environment (what the demo's pipeline and playbooks read)."""
    rest, db, i = [], env.get("HEALTHSEC_DB"), 0
    while i < len(args):
        if args[i] == "--db" and i + 1 < len(args):
            db, i = args[i + 1], i + 2
            continue
        if args[i].startswith("--db="):
            db = args[i].removeprefix("--db=")
        else:
            rest.append(args[i])
        i += 1
    settings = sorted((k, v) for k, v in env.items() if k.startswith("HEALTHSEC_") and k != "HEALTHSEC_DB")
    return hashlib.sha256(json.dumps([rest, db, settings]).encode()).hexdigest()[:16]


def _run_once(real: str, args: list[str], root: Path, run_dir: Path, record: Path) -> None:
    """The real ``healthsec demo ARGS`` in ``run_dir`` (laid out as a page), its output kept in ``record``."""
    run_dir.mkdir()
    (run_dir / "home").mkdir()
    for name in LINKED:
        (run_dir / name).symlink_to(root / name)
    env = {**os.environ, "HOME": str(run_dir / "home")}
    res = subprocess.run(
        [real, "demo", *args], cwd=run_dir, env=env, capture_output=True, text=True, check=False
    )
    record.write_text(json.dumps({"rc": res.returncode, "stdout": res.stdout, "stderr": res.stderr}))


def replay(args: list[str]) -> int:
    real, cache, root = (
        os.environ["DOCS_HEALTHSEC"],
        Path(os.environ["DOCS_DEMO_CACHE"]),
        Path(os.environ["DOCS_ROOT"]),
    )
    key = demo_key(args, dict(os.environ))
    run_dir, record = cache / f"demo-{key}", cache / f"demo-{key}.json"
    with (cache / f"demo-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            _run_once(real, args, root, run_dir, record)
    here = Path.cwd()
    shutil.copytree(
        run_dir,
        here,
        symlinks=True,
        dirs_exist_ok=True,
        ignore=lambda d, names: LINKED if d == str(run_dir) else (),
    )
    done = json.loads(record.read_text())
    sys.stdout.write(done["stdout"].replace(str(run_dir), str(here)))
    sys.stderr.write(done["stderr"].replace(str(run_dir), str(here)))
    return int(done["rc"])


SHIM = """#!/bin/sh
# The docs harness's healthsec: `healthsec demo ...` is run once and replayed (tests/docs/demo_cache.py).
case " $* " in
  *" --help "*|*" -h "*) exec "$DOCS_HEALTHSEC" "$@" ;;
esac
if [ "$1" = demo ]; then
  shift
  exec "$DOCS_PYTHON" "$DOCS_ROOT/tests/docs/demo_cache.py" "$@"
fi
exec "$DOCS_HEALTHSEC" "$@"
"""


def install_shim(bindir: Path) -> Path:
    """Write the ``healthsec`` shim into ``bindir`` (put it first on PATH) and return it."""
    shim = bindir / "healthsec"
    shim.write_text(SHIM)
    shim.chmod(0o755)
    return shim


if __name__ == "__main__":
    sys.exit(replay(sys.argv[1:]))
