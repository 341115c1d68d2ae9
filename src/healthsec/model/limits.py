"""Declared limits of outside input: control characters in text, and the sizes every stored event respects.

One validator for every string that arrives from outside (REST query and path parameters, JSON bodies,
events from the API and the live sources). Messages name the field and the reason, never the value (it may
hold a patient's name).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import fields, is_dataclass
from typing import Any

#: every C0 control character and DEL: refused in names, ids, query and path parameters
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: free text (comments, log messages) may keep tab, line feed and carriage return
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

#: sizes every stored event respects (the store's columns); checked per record before anything is stored
EVENT_LIMITS: Mapping[str, int] = {"id": 64, "source": 128}
#: every integer field of an event (ports, sizes, counts, record numbers) fits a signed 64-bit column
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def control_character(text: str, *, multiline: bool = False) -> str | None:
    """The reason ``text`` is refused (a control character, named by its code and position), or None."""
    found = (_TEXT_CONTROL if multiline else _CONTROL).search(text)
    if found is None:
        return None
    return f"control character U+{ord(found.group()):04X} at position {found.start()} is not allowed"


def _strings(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                yield (*path, "<key>"), key
            yield from _strings(item, (*path, str(key)))
    elif isinstance(value, list | tuple | set | frozenset):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i))
    elif is_dataclass(value) and not isinstance(value, type):  # nested records (an event's provenance)
        for f in fields(value):
            yield from _strings(getattr(value, f.name), (*path, f.name))


def text_problems(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """Every string in ``value`` (nested lists and mappings too) that carries a control character other
    than tab/newline/carriage return: (where, reason)."""
    out = []
    for where, text in _strings(value, path):
        reason = control_character(text, multiline=True)
        if reason is not None:
            out.append((where, reason))
    return out


# what a control character other than tab, newline and carriage return looks like in orjson's output
# (escaped as \u00XX, \b or \f; DEL as itself); a backslash before a 'b' or 'f' only costs the full check
_ESCAPED_CONTROL = re.compile(rb"\\u00[01]|\\[bf]|\x7f")


def _surely_clean(encoded: bytes) -> bool:
    """True when the JSON form of a record holds no control character a text field refuses (one scan of
    the encoded record instead of a walk over every string: the walk was 75 % of validating an event)."""
    return _ESCAPED_CONTROL.search(encoded) is None


def event_problems(event: Any, encoded: bytes | None = None) -> list[tuple[tuple[str | int, ...], str]]:
    """Why an event cannot be accepted: (field path, reason) per problem; empty when it is fine.

    ``id`` and ``source`` respect :data:`EVENT_LIMITS` and hold no control character at all; every other
    string holds none but tab, newline and carriage return (PostgreSQL refuses NUL in text and JSON).
    ``encoded``: the record the event was read from, as orjson wrote it; when it shows no refused control
    character, the strings are not walked one by one (same answer, a fraction of the time).
    """
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for name, limit in EVENT_LIMITS.items():
        value = getattr(event, name, None)
        if isinstance(value, str):
            if len(value) > limit:
                problems.append(((name,), f"longer than {limit} characters ({len(value)})"))
            reason = control_character(value)
            if reason is not None:
                problems.append(((name,), reason))
    if not is_dataclass(event):
        return problems
    if encoded is None or not _surely_clean(encoded):
        for f in fields(event):
            if f.name not in EVENT_LIMITS:
                problems.extend(text_problems(getattr(event, f.name), (f.name,)))
    problems.extend(_integer_problems(event, ()))  # the fields and the provenance: cheap, always checked
    return problems


def _integer_problems(record: Any, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], str]]:
    out: list[tuple[tuple[str | int, ...], str]] = []
    for f in fields(record):
        value = getattr(record, f.name)
        if isinstance(value, int) and not isinstance(value, bool) and not INT_MIN <= value <= INT_MAX:
            out.append(((*path, f.name), "integer out of the signed 64-bit range"))
        elif is_dataclass(value) and not isinstance(value, type):
            out.extend(_integer_problems(value, (*path, f.name)))
    return out
