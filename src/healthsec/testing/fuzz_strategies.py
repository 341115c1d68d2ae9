"""Hypothesis strategies that mutate real samples (byte edits, JSON subtree swaps); needs the test extra."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import strategies as st

INTERESTING = (
    b"\x00",
    b"\xff\xff\xff\xff",
    b"\x7f\xff\xff\xff",
    b"\x80\x00\x00\x00",
    b"-1",
    b"99999999999999999999",
    b"1e309",
    b"\r",
    b"\n",
    b"\x0b",
    b"\x1c\r",
    b"|",
    b"^~\\&",
    b"MSH|^~\\&|",
    b'"',
    b"{",
    b"[",
    b"\xc3\x28",
    b"\xef\xbb\xbf",
    b"NaN",
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=24)
    | st.sampled_from(["", "2026-13-45T99:99:99Z", "0000-01-01T00:00:00Z", "x" * 300, "\u0000", "NaN"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def byte_mutation(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.integers(0, 5))
        pos = draw(st.integers(0, len(data)))
        if op == 0 and data:
            data[min(pos, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == 2:
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == 3:
            del data[pos:]
        elif op == 4:
            chunk = data[pos : pos + draw(st.integers(1, 256))]
            data[pos:pos] = chunk * draw(st.integers(1, 16))
        else:
            token = draw(st.sampled_from(INTERESTING))
            data[pos : pos + draw(st.integers(0, 4))] = token
    return bytes(data)


def _paths(node: Any, prefix: tuple[Any, ...] = (), depth: int = 0) -> list[tuple[Any, ...]]:
    out = [prefix]
    if depth > 6:
        return out
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k), depth + 1)
    elif isinstance(node, list):
        for i, v in enumerate(node[:8]):
            out += _paths(v, (*prefix, i), depth + 1)
    return out


@st.composite
def json_mutation(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """Replace (or delete) one subtree of one JSON document (one line of NDJSON) with a random value."""
    lines = draw(st.sampled_from(seeds)).split(b"\n")
    n = draw(st.integers(0, len(lines) - 1))
    try:
        doc = orjson.loads(lines[n])
    except orjson.JSONDecodeError:
        return draw(byte_mutation(seeds))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        value = draw(json_values)
        if not path:
            doc = value
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()) and len(path) > 1:
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = value
    lines[n] = json.dumps(doc).encode()  # not orjson: integers beyond 64 bits are hostile input too
    return b"\n".join(lines)


def mutated(seeds: list[bytes], json_seeds: bool) -> st.SearchStrategy[bytes]:
    return (json_mutation(seeds) | byte_mutation(seeds)) if json_seeds else byte_mutation(seeds)
