"""Command blocks of README.md and docs/*.md, with the markers that say how the docs harness runs them.

A fenced ```bash block is run as it stands (every command must exit 0). A ```console block, or a plain ```
block holding ``$ `` prompts followed by output, is a session: its ``$ `` commands run one after the other
(the last one's exit code counts). Every block runs unless marked skip. Markers:

- ``<!-- docs-test: skip REASON -->``: not run (REASON: ``service`` needs a running service, ``slow``,
  ``installs`` changes the environment, or any words); counted and reported.
- ``<!-- docs-test: run [exit=N|exit=A,B,...] -->``: the session's last command must exit with N (the
  others with 0), or each command with its own code (default: every command exits 0).
- ``<!-- expect: REGEX -->`` after a block (repeatable): the block's output must match REGEX (Python
  syntax, multi-line); use it for counts, columns, keys and figures within their stated noise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# what a page's scratch directory links from the checkout, so the paths the pages name resolve as in a clone
LINKED = ("src", "tests", "benchmarks", "docs", "pyproject.toml", "README.md")
FENCE = re.compile(r"^```(\w*)\s*$")
MARK = re.compile(r"^<!--\s*docs-test:\s*(run|skip)\b(.*?)-->\s*$")
EXPECT = re.compile(r"^<!--\s*expect:\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    page: str
    line: int
    lang: str
    text: str
    mark: str | None = None  # "run" or "skip"
    detail: str = ""
    expect: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def commands(self) -> list[str]:
        """What runs: the whole block for bash, the ``$ `` lines (with continuations) for console."""
        if self.lang == "bash":
            return [self.text]
        out: list[str] = []
        lines = self.text.splitlines()
        i = 0
        while i < len(lines):
            if lines[i].startswith("$ "):
                cmd = lines[i][2:]
                while cmd.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    cmd = cmd[:-1] + " " + lines[i].strip()
                out.append(cmd)
            i += 1
        return out

    @property
    def runs(self) -> bool:
        return self.mark != "skip"

    @property
    def exit_codes(self) -> list[int]:
        """What each command must exit with: ``exit=N`` is the last command's code (the others 0),
        ``exit=A,B,...`` one code per command."""
        n = max(len(self.commands), 1) if self.lang == "console" else 1
        m = re.search(r"exit=([\d,]+)", self.detail)
        codes = [int(c) for c in m.group(1).split(",")] if m else [0]
        return codes if len(codes) == n else [0] * (n - 1) + [codes[-1]]


def blocks(path: Path, root: Path) -> list[Block]:
    """Every bash and console block of one page with its markers."""
    page = str(path.relative_to(root))
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1), i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        body = lines[start + 1 : j]
        if lang == "" and any(line.startswith("$ ") for line in body):
            lang = "console"
        if lang in ("bash", "console"):
            block = Block(page, start + 1, lang, "\n".join(body))
            k = start - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            if k >= 0 and (mark := MARK.match(lines[k].strip())):
                block.mark, block.detail = mark.group(1), mark.group(2).strip()
            k = j + 1
            while k < len(lines) and (lines[k].strip() == "" or EXPECT.match(lines[k].strip())):
                if e := EXPECT.match(lines[k].strip()):
                    block.expect.append(e.group(1))
                k += 1
            found.append(block)
        i = j + 1
    return found


def all_blocks(root: Path) -> list[Block]:
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    return [b for p in pages if p.exists() for b in blocks(p, root)]
