"""Typed Flow events from a FlowTable, and a Source over flow files (events or ParseErrors, never a crash)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from healthsec.ingest.flows.read import read_table
from healthsec.ingest.flows.table import FlowFormatError, FlowTable
from healthsec.model import Event, Flow, ParseError, Provenance, stable_id


def _ts(value: object, fallback: datetime, source: str) -> datetime:
    if value is None:
        return fallback
    if isinstance(value, int | float):
        seconds = value / 1000.0 if source == "pcap" else float(value)  # nfstream reports milliseconds
        return datetime.fromtimestamp(seconds, tz=UTC)
    text = str(value).strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %I:%M:%S %p", "%d/%m/%Y %H:%M"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return fallback


def _int(value: object) -> int | None:
    if value is None:
        return None
    try:
        return int(float(str(value)))
    except ValueError:
        return None


def _float(value: object) -> float | None:
    if value is None:
        return None
    try:
        return float(str(value))
    except ValueError:
        return None


def flows_from_table(
    table: FlowTable, start: int = 0, stop: int | None = None, indices: Sequence[int] | None = None
) -> Iterator[Flow]:
    """One Flow per row of ``table`` (rows start..stop, or ``indices``), in order. Labels never copied in.

    Records without a time stamp (NSL-KDD, UNSW-NB15) get the file's modification time: ids stay
    stable because they are built from the file name and record number, not from the time.
    """
    path = Path(table.path)
    fallback = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC) if path.exists() else datetime.now(UTC)
    stop = len(table) if stop is None else min(stop, len(table))
    rows = list(range(start, stop)) if indices is None else list(indices)
    cols = table.frame.columns
    meta_cols = table.meta.columns
    frame = table.frame[rows]
    meta = table.meta[rows] if meta_cols else None
    meta_rows = meta.iter_rows() if meta is not None else iter(() for _ in rows)
    records = table.record_numbers
    for i, row, mrow in zip(rows, frame.iter_rows(), meta_rows, strict=True):
        m = dict(zip(meta_cols, mrow, strict=True)) if meta is not None else {}
        record = int(records[i]) if records is not None else i + 1
        duration = _float(m.get("duration"))
        if duration is not None and table.source == "pcap":
            duration /= 1000.0
        yield Flow(
            id=stable_id("flow", table.source, path.name, record),
            ts=_ts(m.get("ts"), fallback, table.source),
            source=table.source,
            provenance=Provenance(source=table.source, locator=str(path), record=record),
            src_ip=None if m.get("src_ip") is None else str(m["src_ip"]),
            dst_ip=None if m.get("dst_ip") is None else str(m["dst_ip"]),
            src_port=_int(m.get("src_port")),
            dst_port=_int(m.get("dst_port")),
            protocol=None if m.get("protocol") is None else str(m["protocol"]),
            duration=duration,
            bytes_out=_int(m.get("bytes_out")),
            bytes_in=_int(m.get("bytes_in")),
            packets_out=_int(m.get("packets_out")),
            packets_in=_int(m.get("packets_in")),
            application=None if m.get("application") is None else str(m["application"]),
            features=dict(zip(cols, row, strict=True)),
        )


@dataclass
class FlowFileSource:
    """A Source over one flow file: yields Flow events, then the ParseErrors of skipped records."""

    path: str
    fmt: str
    label_column: str | None = None
    name: str = "flows"

    def read(self) -> Iterator[Event | ParseError]:
        try:
            table = read_table(self.path, self.fmt, self.label_column)
        except FlowFormatError as exc:
            yield ParseError(source=self.fmt, locator=self.path, reason=str(exc))
            return
        yield from flows_from_table(table)
        yield from table.errors
