"""Read one flow file of any supported format into a FlowTable (dispatches to the CSV, Zeek and pcap readers).

Kept apart from ``table`` so that the pcap and Zeek readers, which build on ``table``, are not imported by it
(``table`` -> ``pcap`` -> ``table`` was an import cycle).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from healthsec.ingest.flows.formats import FORMATS, LAYOUTS, NSL_KDD_COLUMNS
from healthsec.ingest.flows.table import (
    FlowFormatError,
    FlowTable,
    _finish,
    _open_text,
    _read_csv,
    _unique_names,
    normalise_name,
)


def read_table(path: str | Path, fmt: str, label_column: str | None = None) -> FlowTable:
    """Read one flow file of format ``fmt`` (see FORMATS) into a FlowTable; raises FlowFormatError."""
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
        return _finish(df, layout, str(p), label_column, errors, lines)
    names: Sequence[str] | None = None
    if fmt == "nsl-kdd":
        first = raw.split(b"\n", 1)[0].split(b",")
        if len(first) not in (41, 42, 43):
            raise FlowFormatError(f"{p}: not NSL-KDD data, line 1 has {len(first)} fields (expected 41-43)")
        names = NSL_KDD_COLUMNS[: len(first)]
    df, errors, lines = _read_csv(raw, str(p), names, fmt)
    clean = normalise_name if fmt == "cicflowmeter" else (lambda c: c.strip().lstrip("\ufeff"))
    df = df.rename(_unique_names([clean(c) for c in df.columns], df.columns), strict=False)
    return _finish(df, layout, str(p), label_column, errors, lines)
