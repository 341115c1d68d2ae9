"""Read one flow file of any supported format into a FlowTable (dispatches to the CSV, Zeek and pcap readers).

Kept apart from ``table`` so that the pcap and Zeek readers, which build on ``table``, are not imported by it
(``table`` -> ``pcap`` -> ``table`` was an import cycle).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from healthsec.ingest.flows.columns import apply, exclusions, recognise
from healthsec.ingest.flows.formats import CICFLOWMETER, FORMATS, GENERIC, LAYOUTS, NSL_KDD_COLUMNS, Layout
from healthsec.ingest.flows.table import (
    FlowFormatError,
    FlowTable,
    _finish,
    _open_text,
    _read_csv,
    _unique_names,
    normalise_name,
)


def read_table(
    path: str | Path, fmt: str, label_column: str | None = None, keep: Sequence[str] = ()
) -> FlowTable:
    """Read one flow file of format ``fmt`` (see FORMATS) into a FlowTable; raises FlowFormatError.

    ``keep`` names columns to use as features even though they look like labels or identifiers."""
    p = Path(path)
    if fmt not in FORMATS:
        raise FlowFormatError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not p.is_file():
        raise FlowFormatError(f"{p}: no such file")
    if fmt == "pcap":
        from healthsec.ingest.flows.pcap import read_pcap_table

        return read_pcap_table(p, label_column=label_column)
    raw = _open_text(p)
    if not raw.strip():
        raise FlowFormatError(f"{p}: file is empty")
    layout = LAYOUTS[fmt]
    if fmt == "zeek":
        from healthsec.ingest.flows.zeek import read_zeek_frame

        df, errors, lines = read_zeek_frame(raw, str(p))
        return _finish(df, layout, str(p), label_column, errors, lines, keep)
    names: Sequence[str] | None = None
    if fmt == "nsl-kdd":
        first = raw.split(b"\n", 1)[0].split(b",")
        if len(first) not in (41, 42, 43):
            raise FlowFormatError(f"{p}: not NSL-KDD data, line 1 has {len(first)} fields (expected 41-43)")
        names = NSL_KDD_COLUMNS[: len(first)]
    df, errors, lines = _read_csv(raw, str(p), names, fmt)
    clean = normalise_name if fmt == "cicflowmeter" else (lambda c: c.strip().lstrip("\ufeff"))
    df = df.rename(_unique_names([clean(c) for c in df.columns], df.columns), strict=False)
    notes: list[str] = []
    if fmt == "csv":
        df, layout, label_column, notes = _known_layout(df, label_column, keep)
    return _finish(df, layout, str(p), label_column, errors, lines, keep, notes)


def _known_layout(
    df: pl.DataFrame, label_column: str | None, keep: Sequence[str]
) -> tuple[pl.DataFrame, Layout, str | None, list[str]]:
    """A generic CSV whose columns are a known layout (renamed, reordered) is read as that layout."""
    names = [normalise_name(c) for c in df.columns]
    if "flow_duration" in names and sum(("fwd" in n or "bwd" in n) for n in names) >= 8:
        renamed = df.rename(_unique_names(names, df.columns), strict=False)
        label = normalise_name(label_column) if label_column is not None else None
        return renamed, CICFLOWMETER, label, ["columns recognised as the cicflowmeter layout by name"]
    found = recognise(df)
    if found is None:
        return df, GENERIC, label_column, []
    layout = LAYOUTS[found.layout]
    out = apply(df, found)
    if any(c not in out.columns for c in layout.required):
        return df, GENERIC, label_column, []
    label = found.rename.get(label_column, label_column) if label_column is not None else None
    notes = [found.describe()]
    extra = [c for c in out.columns if c not in found.rename.values() and c != label]
    if extra:  # columns the layout does not have: the generic rules for ids and labels apply to them
        gone = exclusions(out.select(extra), None, keep, True)
        out = out.drop([g.column for g in gone])
        notes += [
            f"column {g.column!r} not used as a feature: {g.reason}; --keep-column overrides" for g in gone
        ]
    return out, layout, label, notes
