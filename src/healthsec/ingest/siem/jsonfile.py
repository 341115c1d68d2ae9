"""Read JSON records from NDJSON or a JSON array, plain or gzipped; each bad line is a ParseError."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from healthsec.model import Event, ParseError


def open_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def records(path: Path, source: str) -> Iterator[tuple[int, dict[str, Any]] | ParseError]:
    """(record number, object) for each record; a line that is not a JSON object becomes a ParseError."""
    try:
        data = open_bytes(path)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        yield ParseError(source, str(path), f"cannot read: {type(exc).__name__}: {exc}")
        return
    if data.lstrip()[:1] == b"[":
        try:
            items = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            yield ParseError(source, str(path), f"not a JSON array: {exc}")
            return
        for n, item in enumerate(items, 1):
            if isinstance(item, dict):
                yield n, item
            else:
                yield ParseError(source, str(path), "not a JSON object", record=n, raw=str(item)[:200])
        return
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield ParseError(
                source, str(path), f"not JSON: {exc}", record=n, raw=line[:200].decode("utf-8", "replace")
            )
            continue
        if not isinstance(item, dict):
            yield ParseError(
                source, str(path), "not a JSON object", record=n, raw=line[:200].decode("utf-8", "replace")
            )
            continue
        yield n, item


def parse_ts(value: Any) -> datetime:
    """ISO-8601 with ``Z``, ``+HH:MM`` or ``+HHMM``; a time without an offset is taken as UTC."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"bad timestamp {value!r}")
    text = value.strip().replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit() and ":" not in text[-5:]:
        text = text[:-2] + ":" + text[-2:]
    ts = datetime.fromisoformat(text)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def flatten(
    obj: Any, prefix: str = "", out: dict[str, object] | None = None, depth: int = 0
) -> dict[str, object]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists of scalars stay lists; depth is bounded."""
    out = {} if out is None else out
    if isinstance(obj, dict) and depth < 6:
        for k, v in obj.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out, depth + 1)
    elif isinstance(obj, list):
        out[prefix] = [
            x if isinstance(x, str | int | float | bool) else orjson.dumps(x).decode() for x in obj[:100]
        ]
    else:
        out[prefix] = obj
    return out


def read_converted(
    path: Path,
    source: str,
    what: str,
    convert: Callable[[dict[str, Any], int], Event | None],
) -> Iterator[Event | ParseError]:
    """Each record through ``convert`` (None: skip it); a record it refuses is a ParseError naming it."""
    for item in records(path, source):
        if isinstance(item, ParseError):
            yield item
            continue
        n, rec = item
        try:
            event = convert(rec, n)
        except (ValueError, TypeError, KeyError) as exc:
            yield ParseError(source, str(path), f"{what}: {exc}", record=n, raw=str(rec)[:200])
            continue
        if event is not None:
            yield event
