"""Version strings and free-text version ranges of advisories (``< 8.2.2``, ``>= 1.1 | <= 1.3.2``, ``4.X``).

Hand-written on purpose: CSAF's ``vers:`` ranges are rare in practice (CISA's ICSMA advisories never use
them), and the versions of medical devices are not SemVer or PEP 440 (``R8.0.3``, ``C.00.04``, ``2.6A``,
``B.12``), so ``packaging`` or ``univers`` refuse most of them. A version here is a sequence of number
and letter tokens compared element by element; letters sort before numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"\d+|[a-z]+")
_CMP = re.compile(r"^(<=|>=|<|>|==|=)\s*(.+)$")
_VERSIONISH = re.compile(r"^v?(?:\d|[a-z](?:[.\-]?\d)|[a-z]$|[a-z]\.\d)", re.IGNORECASE)
_ALL = re.compile(r"^(\*|all|all versions?|any|any versions?|all current versions?|-)$", re.IGNORECASE)
_PAREN = re.compile(r"\([^)]*\)?")

Key = tuple[tuple[int, int | str], ...]


def version_key(text: str) -> Key:
    """A sortable key: ``8.2.10`` > ``8.2.2``; a leading ``v`` / ``version`` is dropped."""
    t = text.strip().lower()
    t = re.sub(r"^(version|ver\.?|v)\s*(?=\d)", "", t)
    out: list[tuple[int, int | str]] = []
    for tok in _TOKEN.findall(t):
        out.append((1, int(tok)) if tok.isdigit() else (0, tok))
    # trailing zero components do not matter: 8.2 == 8.2.0
    while out and out[-1] == (1, 0) and len(out) > 1:
        out.pop()
    return tuple(out)


def looks_like_version(text: str) -> bool:
    return bool(_VERSIONISH.match(text.strip()))


@dataclass(frozen=True, slots=True)
class Bound:
    op: str  # one of < <= > >= =
    version: str

    def holds(self, v: Key) -> bool:
        if self.op == "=":
            return _wild_eq(self.version, v)
        b = version_key(_WILD_TAIL.sub("", self.version.strip()))
        if b != version_key(self.version):  # "<= 12.2.x.x": compare on the fixed part only
            v = v[: len(b)]
        return {
            "<": v < b,
            "<=": v <= b,
            ">": v > b,
            ">=": v >= b,
        }[self.op]


_WILD_TAIL = re.compile(r"(\.(x|\*))+$", re.IGNORECASE)
_BUILD = re.compile(r"[-+](?=[0-9a-f]*[a-f])[0-9a-f]{6,40}$", re.IGNORECASE)  # "1.4.2.0-9d9eff4": a commit


def _wild_eq(spec: str, v: Key) -> bool:
    """``4.X`` / ``8.x`` / ``9.*`` match any version that starts with 4 / 8 / 9."""
    s = _BUILD.sub("", spec.strip().lower())
    if _WILD_TAIL.search(s) or s.endswith("*"):
        prefix = version_key(_WILD_TAIL.sub("", s).rstrip("*. "))
        return v[: len(prefix)] == prefix
    return v == version_key(s)


@dataclass(frozen=True, slots=True)
class VersionSpec:
    """What an advisory says about versions: all of them, some intervals and/or exact versions, or unknown."""

    text: str
    kind: str  # "all" | "versions" | "unknown"
    intervals: tuple[tuple[Bound, ...], ...] = ()
    exact: tuple[str, ...] = ()
    words: tuple[str, ...] = ()  # parts that are not versions (model names, prose)

    def contains(self, version: str | None) -> tuple[bool | None, str]:
        """Whether ``version`` is affected: True / False, or None when it cannot be decided; and why."""
        if self.kind == "all":
            return True, f"advisory covers all versions ({self.text!r})"
        if self.kind == "unknown":
            return None, f"advisory gives no version information we can read ({self.text!r})"
        if not version or not version.strip():
            return None, f"asset version unknown (advisory: {self.text!r})"
        v = version_key(_BUILD.sub("", version.strip()))
        for e in self.exact:
            if _wild_eq(e, v):
                return True, f"version {version} is listed ({self.text!r})"
        for interval in self.intervals:
            if all(b.holds(v) for b in interval):
                return (
                    True,
                    f"version {version} is in {' and '.join(f'{b.op} {b.version}' for b in interval)}",
                )
        return False, f"version {version} is outside {self.text!r}"


def parse_version_spec(text: str | None) -> VersionSpec:
    """Parse CSAF ``product_version`` / ``product_version_range`` text, ``vers:`` included."""
    raw = (text or "").strip()
    if not raw or _ALL.match(raw):
        return VersionSpec(raw, "all" if raw else "unknown")
    body = raw
    if body.lower().startswith("vers:"):
        body = body.split("/", 1)[1] if "/" in body else ""
        if _ALL.match(body.strip()):
            return VersionSpec(raw, "all")
    body = _PAREN.sub(" ", body)
    parts = [p.strip() for p in re.split(r"\|", body) if p.strip()]
    intervals: list[list[Bound]] = []
    exact: list[str] = []
    words: list[str] = []
    current: list[Bound] = []
    for part in parts:
        m = _CMP.match(part)
        if m:
            op = "=" if m.group(1) in ("=", "==") else m.group(1)
            ver = m.group(2).strip().split()[0] if m.group(2).strip() else ""
            if not ver or not looks_like_version(ver):
                words.append(part)
                continue
            b = Bound(op, ver)
            if op == "=":
                exact.append(ver)
            elif op in (">", ">="):
                if current:
                    intervals.append(current)
                current = [b]
            else:
                current.append(b)
                intervals.append(current)
                current = []
        else:
            first = part.split()[0]
            dotted = bool(re.match(r"^v?\d+(\.[0-9a-z]+)+$", first, re.IGNORECASE))
            if looks_like_version(first) and (len(part.split()) <= 2 or dotted):
                exact.append(first)
            elif re.match(r"^(v?\d+(\.\d+)*)\s*(and|or)\s*(later|earlier|prior|older|newer)", part, re.I):
                ver = part.split()[0]
                later = re.search(r"later|newer", part, re.I)
                intervals.append([Bound(">=" if later else "<=", ver)])
            else:
                words.append(part)
    if current:
        intervals.append(current)
    if not intervals and not exact:
        return VersionSpec(raw, "unknown", words=tuple(words))
    return VersionSpec(raw, "versions", tuple(tuple(i) for i in intervals), tuple(exact), tuple(words))
