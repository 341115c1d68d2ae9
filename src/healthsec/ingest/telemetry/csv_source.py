"""Device telemetry from CSV: a generic wide format and the TON_IoT telemetry files, with their labels."""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from healthsec.model import DeviceReading, Event, ParseError, Provenance, parse_utc, stable_id

TelemetryFormat = Literal["csv", "ton-iot"]
FORMATS: tuple[TelemetryFormat, ...] = ("csv", "ton-iot")

# Two-state readings written as words. TON_IoT spells the same state differently across capture days
# ('false  ' with trailing blanks vs '0'); normalising them stops a model from learning the spelling.
STATES: dict[str, float] = {
    "on": 1.0,
    "off": 0.0,
    "open": 1.0,
    "closed": 0.0,
    "true": 1.0,
    "false": 0.0,
    "high": 1.0,
    "low": 0.0,
    "yes": 1.0,
    "no": 0.0,
}
_TS_COLUMNS = ("ts", "timestamp", "time_utc", "datetime")
_META = {"device_id", "device_type", "ip", "label", "type", "date", "time", *_TS_COLUMNS}
_MISSING = {"", "na", "nan", "null", "none", "-"}


@dataclass(frozen=True, slots=True)
class Labelled:
    """One row: the reading (or why it was refused) and, when the file has them, its labels."""

    item: DeviceReading | ParseError
    label: int | None
    attack_type: str | None


def value_of(raw: str) -> float | None:
    """A metric cell as a float; None when missing; ``ValueError`` when it is neither a number nor a state."""
    text = raw.strip().casefold()
    if text in _MISSING:
        return None
    if text in STATES:
        return STATES[text]
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{raw.strip()[:40]!r} is not a number or a known state") from None
    if not math.isfinite(number):
        raise ValueError(f"non-finite value {raw.strip()!r}")
    return number


def _ton_ts(date_text: str, time_text: str) -> datetime:
    # TON_IoT writes '25-Apr-19' and ' 19:19:40 ' (local lab time, no zone); we read it as UTC. The time is
    # kept for ordering and windows only: models never see it (attack types were recorded on separate days).
    return datetime.strptime(f"{date_text.strip()} {time_text.strip()}", "%d-%b-%y %H:%M:%S").replace(
        tzinfo=UTC
    )


def device_from_path(path: Path) -> str:
    stem = path.name.split(".", 1)[0]
    stem = re.sub(r"^(Train_Test_)?IoT_", "", stem)
    return stem.lower()


class TelemetryCsvSource:
    """Rows of a CSV (``.csv`` or ``.csv.gz``) as :class:`DeviceReading` events, one per row.

    ``csv``: columns ``ts`` (ISO-8601 with zone), optional ``device_id``, ``device_type``, ``ip``, ``label``,
    ``type``; every other column is a metric. ``ton-iot``: ``date``, ``time``, value columns, ``label``,
    ``type``; the device is named after the file. A bad row becomes a ParseError naming file, line and reason.
    """

    def __init__(self, path: str | Path, fmt: TelemetryFormat = "csv", device_id: str | None = None) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown telemetry format {fmt!r}; expected one of {', '.join(FORMATS)}")
        self.path = Path(path)
        self.fmt = fmt
        self.device_id = device_id
        self.name = f"telemetry-{fmt}"

    def read(self) -> Iterator[Event | ParseError]:
        for row in self.read_labelled():
            yield row.item

    def read_labelled(self) -> Iterator[Labelled]:
        locator = str(self.path)
        try:
            raw = self.path.read_bytes()
            if self.path.suffix == ".gz":
                raw = gzip.decompress(raw)
            text = raw.decode("utf-8-sig")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            yield Labelled(ParseError(self.name, locator, f"cannot read: {exc}"), None, None)
            return
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            yield from self._rows(locator, reader)
        except csv.Error as exc:  # e.g. a bare CR inside a field: the rows after it cannot be framed
            reason = f"CSV syntax error ({exc}); the rest of the file is skipped"
            yield Labelled(ParseError(self.name, locator, reason, reader.line_num), None, None)

    def _rows(self, locator: str, reader: Any) -> Iterator[Labelled]:
        header = [h.strip() for h in next(reader, [])]
        if not header:
            yield Labelled(ParseError(self.name, locator, "empty file (no header)"), None, None)
            return
        problem = self._check_header(header)
        if problem:
            yield Labelled(ParseError(self.name, locator, problem, 1), None, None)
            return
        metrics = [h for h in header if h.lower() not in _META]
        default_device = self.device_id or device_from_path(self.path)
        for lineno, cells in enumerate(reader, start=2):
            if not cells or all(not c.strip() for c in cells):
                continue
            yield self._row(locator, lineno, header, cells, metrics, default_device)

    def _check_header(self, header: list[str]) -> str | None:
        lower = {h.lower() for h in header}
        if self.fmt == "ton-iot" and not {"date", "time"} <= lower:
            return "not a TON_IoT telemetry file: header lacks 'date' and 'time'"
        if self.fmt == "csv" and not lower & set(_TS_COLUMNS):
            return f"header lacks a timestamp column (one of {', '.join(_TS_COLUMNS)})"
        return None

    def _row(
        self, locator: str, lineno: int, header: list[str], cells: list[str], metrics: list[str], device: str
    ) -> Labelled:
        def fail(reason: str) -> Labelled:
            return Labelled(ParseError(self.name, locator, reason, lineno), None, None)

        if len(cells) != len(header):
            return fail(f"{len(cells)} fields, header has {len(header)}")
        row = {h.lower() if h.lower() in _META else h: c for h, c in zip(header, cells, strict=True)}
        try:
            if self.fmt == "ton-iot":
                ts = _ton_ts(row["date"], row["time"])
            else:
                ts_text = next(row[c] for c in _TS_COLUMNS if c in row)
                ts = parse_utc(ts_text.strip())
        except ValueError as exc:
            return fail(f"bad timestamp: {exc}")
        values: dict[str, float | None] = {}
        for name in metrics:
            try:
                values[name] = value_of(row[name])
            except ValueError as exc:
                return fail(f"column {name!r}: {exc}")
        label: int | None = None
        label_text = row.get("label", "").strip()
        if label_text:
            if label_text not in ("0", "1"):
                return fail(f"label {label_text!r} is not 0 or 1")
            label = int(label_text)
        attack_type = row.get("type", "").strip() or None
        device_id = row.get("device_id", "").strip() or device
        reading = DeviceReading(
            id=stable_id("rd", self.name, locator.rsplit("/", 1)[-1], lineno),
            ts=ts,
            source=self.name,
            provenance=Provenance(source=self.name, locator=locator, record=lineno),
            device_id=device_id,
            device_type=row.get("device_type", "").strip() or device,
            metrics=values,
            ip=row.get("ip", "").strip() or None,
        )
        return Labelled(reading, label, attack_type)
