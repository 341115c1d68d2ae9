"""Zeek conn.log reader: the TSV form (``#fields`` header) and JSON lines (also mixed-stream logs)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import orjson
import polars as pl

from healthsec.ingest.flows.table import FlowFormatError
from healthsec.model import ParseError

UNSET = ("-", "(empty)")


def read_zeek_frame(raw: bytes, path: str) -> tuple[pl.DataFrame, list[ParseError], npt.NDArray[np.int64]]:
    """Return the conn records as a frame of text/number columns; bad lines become ParseErrors."""
    text = raw.decode("utf-8", errors="replace")
    first = text.lstrip()[:1]
    if first == "{":
        return _json(text, path)
    if text.startswith("#"):
        return _tsv(text, path)
    raise FlowFormatError(f"{path}: not a Zeek log (neither a '#fields' header nor JSON lines)")


def _tsv(text: str, path: str) -> tuple[pl.DataFrame, list[ParseError], npt.NDArray[np.int64]]:
    fields: list[str] | None = None
    sep = "\t"
    rows: list[list[str | None]] = []
    lines: list[int] = []
    errors: list[ParseError] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("#separator"):
                sep = line.split(" ", 1)[1].encode().decode("unicode_escape") if " " in line else sep
            elif line.startswith("#fields"):
                fields = line.split(sep)[1:]
            continue
        if fields is None:
            raise FlowFormatError(f"{path}: Zeek TSV without a '#fields' header before line {n}")
        parts = line.split(sep)
        if len(parts) != len(fields):
            errors.append(
                ParseError(
                    source="zeek",
                    locator=path,
                    record=n,
                    raw=line[:200],
                    reason=f"expected {len(fields)} fields, found {len(parts)}",
                )
            )
            continue
        rows.append([None if v in UNSET else v for v in parts])
        lines.append(n)
    if fields is None:
        raise FlowFormatError(f"{path}: Zeek TSV without a '#fields' header")
    frame = pl.DataFrame(rows, schema=dict.fromkeys(fields, pl.String), orient="row")
    return _numbers(frame), errors, np.array(lines, dtype=np.int64)


def _json(text: str, path: str) -> tuple[pl.DataFrame, list[ParseError], npt.NDArray[np.int64]]:
    records: list[dict[str, object]] = []
    lines: list[int] = []
    errors: list[ParseError] = []
    other = 0
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            errors.append(
                ParseError(
                    source="zeek", locator=path, record=n, reason=f"invalid JSON: {exc}", raw=line[:200]
                )
            )
            continue
        if not isinstance(rec, dict):
            errors.append(ParseError(source="zeek", locator=path, record=n, reason="not a JSON object"))
            continue
        stream = rec.get("@stream", rec.get("_path"))
        if stream is not None and stream != "conn":
            other += 1  # dns/ssl/http records of a combined log are not flows
            continue
        # Some exporters write id_orig_h instead of id.orig_h.
        records.append({k.replace("id_", "id.", 1) if k.startswith("id_") else k: v for k, v in rec.items()})
        lines.append(n)
    if not records:
        raise FlowFormatError(f"{path}: no Zeek conn records ({other} records of other streams)")
    cols: list[str] = []
    for rec in records:
        for k in rec:
            if k not in cols:
                cols.append(k)
    data = {c: [None if (v := r.get(c)) is None or v in UNSET else str(v) for r in records] for c in cols}
    frame = pl.DataFrame(data, schema=dict.fromkeys(cols, pl.String))
    return _numbers(frame), errors, np.array(lines, dtype=np.int64)


def _numbers(frame: pl.DataFrame) -> pl.DataFrame:
    """Columns that parse as numbers everywhere they are set become Float64."""
    out = []
    for c in frame.columns:
        cast = frame[c].cast(pl.Float64, strict=False)
        out.append(cast if cast.null_count() == frame[c].null_count() and c not in ("uid",) else frame[c])
    return pl.DataFrame(out)
