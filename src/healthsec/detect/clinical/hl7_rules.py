"""Stateless HL7 v2 content checks: escape decoding, injection patterns located by segment and field."""

from __future__ import annotations

import re
from dataclasses import dataclass

# (kind, pattern, ATT&CK techniques). Patterns avoid the HL7 separators | ^ ~ & so that ordinary
# field structure never matches; they were checked against the 130 CDC benign samples (no hit).
# Quantifiers are bounded: an unbounded ``[\w\s]+\s+from`` backtracked to 30 ms per 24 kB message.
INJECTIONS: tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...] = (
    (
        "sql",
        re.compile(
            r"(?i)(\bunion\s+(all\s+)?select\b|\b(drop|truncate|alter)\s+table\b|\binsert\s+into\s+\w+"
            r"|\bdelete\s+from\s+\w+|\bselect\s+[\w*]{1,40}(\s*,\s*[\w*]{1,40}){0,10}\s+from\s+\w+\s*(where\b|;|--|$)"
            r"|'\s*(or|and)\s+'?\w+'?\s*=\s*'?\w+|'\s*;?\s*--|\bexec(ute)?\s*\(?\s*(xp_|sp_)"
            r"|\bwaitfor\s+delay\b|\bsleep\s*\(\s*\d+\s*\)|\bbenchmark\s*\()"
        ),
        ("T1190",),
    ),
    (
        "script",
        re.compile(
            r"(?i)(<\s*script\b|javascript\s*:|\bon(error|load|click|mouseover|focus)\s*=|<\s*(iframe|svg|object"
            r"|embed|img)\b[^>]*>|\beval\s*\(|document\.cookie)"
        ),
        ("T1059.007", "T1190"),
    ),
    (
        "command",
        re.compile(
            r"(?i)((;|`|\$\()\s*(/bin/|/usr/bin/|cmd(\.exe)?\b|powershell|bash\b|sh\s+-c|curl\s|wget\s|nc\s+-"
            r"|rm\s+-|cat\s+/etc/|whoami|certutil|id\b)|\$\{jndi:|(\.\./){2,}|/etc/passwd)"
        ),
        ("T1059", "T1190"),
    ),
)

_ESCAPES = {"F": "|", "S": "^", "T": "&", "R": "~", "E": "\\"}
_ESCAPE = re.compile(r"\\([FSTRE]|X[0-9A-Fa-f]+|\.br|H|N)\\")


def unescape(text: str) -> str:
    """Decode HL7 escape sequences (\\F\\, \\Xhh\\ ...) so payloads hidden in hex still match."""

    def repl(m: re.Match[str]) -> str:
        code = m.group(1)
        if code in _ESCAPES:
            return _ESCAPES[code]
        if code.startswith("X"):
            try:
                return bytes.fromhex(code[1:]).decode("latin-1")
            except ValueError:
                return m.group(0)
        return " "

    return _ESCAPE.sub(repl, text) if "\\" in text else text


@dataclass(frozen=True, slots=True)
class InjectionHit:
    """One injection pattern found: where (segment-field, e.g. ``PID-5``), what kind, the matched text."""

    kind: str
    location: str
    snippet: str
    techniques: tuple[str, ...]


# Cheap substring screen run before the regexes (most messages contain none of these).
_SCREEN = re.compile(
    r"(?i)select|drop|truncate|alter|insert|delete|exec|waitfor|sleep|benchmark|<|javascript"
    r"|eval\s*\(|cookie|\bon\w+\s*=|`|\$\(|\$\{|\.\./|/etc/|'\s*(or|and)\b|'\s*;?\s*--|;\s*\S"
)


def find_injections(text: str) -> list[InjectionHit]:
    """Injection payloads in field values; the snippet is only the matched payload (no other content)."""
    hits: list[InjectionHit] = []
    quick = unescape(text)
    if not _SCREEN.search(quick) or not any(p.search(quick) for _, p, _ in INJECTIONS):
        return hits
    for seg in text.split("\r"):
        if len(seg) < 4:
            continue
        sep = seg[3] if seg.startswith("MSH") else "|"
        name = seg[:3]
        for idx, value in enumerate(seg.split(sep)[1:], start=1):
            if not value:
                continue
            plain = unescape(value)
            for kind, pattern, techniques in INJECTIONS:
                m = pattern.search(plain)
                if m:
                    field_no = idx + 1 if name == "MSH" else idx
                    hits.append(InjectionHit(kind, f"{name}-{field_no}", m.group(0)[:60], techniques))
    return hits
