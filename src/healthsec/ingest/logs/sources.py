"""Log file sources: EVTX, JSON lines (plain, .gz, .zip, .tar.gz), syslog, auditd and Zeek files."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from healthsec.ingest.logs.text import (
    parse_auditd,
    parse_syslog,
    zeek_record,
    zeek_tsv_fields,
    zeek_tsv_row,
)
from healthsec.ingest.logs.windows import RecordError, to_log_record
from healthsec.model import Event, LogRecord, ParseError

FORMATS = ("auto", "evtx", "json", "syslog", "auditd", "zeek")


def _sniff(locator: str, head: bytes) -> str:
    low = locator.lower().removesuffix(".gz")
    if low.endswith(".evtx") or head.startswith(b"ElfFile"):
        return "evtx"
    if b"\x00" in head[:4096]:
        return "binary"
    text = head.lstrip()
    if text.startswith(b"#separator") or b'"@stream"' in head[:4096] or b'"_path"' in head[:4096]:
        return "zeek"
    if text.startswith((b"{", b"[")):
        return "json"
    if text.startswith((b"type=", b"node=")):
        return "auditd"
    return "syslog"


@dataclass
class LogFileSource:
    """Reads one log file (or archive) into LogRecords; each bad record becomes a ParseError."""

    path: Path
    fmt: str = "auto"
    name: str = "logs"
    year: int | None = None  # for RFC 3164 syslog, which has no year (default: the file's mtime year)

    def read(self) -> Iterator[Event | ParseError]:
        if self.fmt not in FORMATS:
            raise ValueError(f"unknown log format {self.fmt!r}; expected one of {', '.join(FORMATS)}")
        try:
            members = list(_members_lazy(self.path))
        except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
            yield ParseError(self.name, str(self.path), f"cannot open: {exc}")
            return
        for locator, opener in members:
            try:
                with opener() as fh:
                    yield from self._read_stream(locator, fh)
            except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
                yield ParseError(self.name, locator, f"read failed: {exc}")

    def _read_stream(self, locator: str, fh: IO[bytes]) -> Iterator[Event | ParseError]:
        data = fh.read()
        fmt = self.fmt if self.fmt != "auto" else _sniff(locator, data[:8192])
        if fmt == "evtx":
            yield from read_evtx(data, source=self.name, locator=locator)
            return
        if fmt == "binary":  # e.g. the packet captures shipped beside OTRF logs: said, not silently skipped
            yield ParseError(self.name, locator, "binary member (not a log format we read); skipped")
            return
        text = data.decode("utf-8", errors="replace")
        if fmt == "json":
            yield from read_json_text(text, source=self.name, locator=locator)
        elif fmt == "zeek":
            yield from read_zeek_text(text, source=self.name, locator=locator)
        else:
            year = self.year or datetime.fromtimestamp(self.path.stat().st_mtime, UTC).year
            for n, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    if fmt == "auditd":
                        yield parse_auditd(line, source=self.name, locator=locator, record=n)
                    else:
                        yield parse_syslog(line, source=self.name, locator=locator, record=n, year=year)
                except (RecordError, ValueError) as exc:
                    yield ParseError(self.name, locator, str(exc), record=n, raw=line[:200])


def _members_lazy(path: Path) -> Iterator[tuple[str, Any]]:
    """Member locators with a zero-argument opener each (archives are re-opened per member)."""
    low = path.name.lower()
    if low.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            names = [m for m in zf.namelist() if not m.endswith("/")]
        for m in names:
            yield f"{path}!{m}", _zip_opener(path, m)
    elif low.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(path) as tf:
            names = [i.name for i in tf.getmembers() if i.isfile()]
        for m in names:
            yield f"{path}!{m}", _tar_opener(path, m)
    elif low.endswith(".gz"):
        yield str(path), lambda: gzip.open(path, "rb")  # noqa: SIM115 - the caller closes it
    else:
        yield str(path), lambda: path.open("rb")


def _zip_opener(path: Path, member: str) -> Any:
    def opener() -> IO[bytes]:
        with zipfile.ZipFile(path) as zf:
            return io.BytesIO(zf.read(member))

    return opener


def _tar_opener(path: Path, member: str) -> Any:
    def opener() -> IO[bytes]:
        with tarfile.open(path) as tf:
            fh = tf.extractfile(member)
            if fh is None:
                raise OSError(f"{member} is not a regular file")
            return io.BytesIO(fh.read())

    return opener


def read_json_text(text: str, *, source: str, locator: str) -> Iterator[LogRecord | ParseError]:
    """JSON lines; one pretty-printed object, an array, or concatenated objects also work."""
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and "\n{" not in stripped and "}\n" in stripped):
        yield from _read_json_docs(stripped, source=source, locator=locator)
        return
    lines = text.splitlines()
    if lines and len(lines) > 1 and lines[0].strip() == "{":
        yield from _read_json_docs(stripped, source=source, locator=locator)
        return
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield ParseError(source, locator, f"invalid JSON: {exc}", record=n, raw=line[:200])
            continue
        yield _doc_to_record(doc, source=source, locator=locator, record=n, raw=line)


def _read_json_docs(text: str, *, source: str, locator: str) -> Iterator[LogRecord | ParseError]:
    decoder = json.JSONDecoder()
    pos, n = 0, 0
    while pos < len(text):
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            break
        try:
            doc, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield ParseError(
                source,
                locator,
                f"invalid JSON at character {exc.pos}: {exc.msg}",
                record=n + 1,
                raw=text[pos : pos + 200],
            )
            return
        pos = end
        docs = doc if isinstance(doc, list) else [doc]
        for d in docs:
            n += 1
            yield _doc_to_record(d, source=source, locator=locator, record=n, raw=None)


def _doc_to_record(
    doc: object, *, source: str, locator: str, record: int, raw: str | None
) -> LogRecord | ParseError:
    if not isinstance(doc, dict):
        return ParseError(
            source, locator, "JSON record is not an object", record=record, raw=(raw or "")[:200]
        )
    try:
        if "@stream" in doc or "_path" in doc:
            return zeek_record(doc, stream=None, source=source, locator=locator, record=record)
        return to_log_record(doc, source=source, locator=locator, record=record)
    except (RecordError, ValueError) as exc:
        return ParseError(source, locator, str(exc), record=record, raw=(raw or "")[:200])


def read_zeek_text(text: str, *, source: str, locator: str) -> Iterator[LogRecord | ParseError]:
    """Zeek logs in JSON lines or TSV with a ``#fields`` header."""
    if not text.lstrip().startswith("#"):
        yield from read_json_text(text, source=source, locator=locator)
        return
    header: list[str] = []
    names: list[str] = []
    stream: str | None = None
    for n, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            header.append(line)
            names, stream = zeek_tsv_fields(header)
            continue
        if not line.strip():
            continue
        try:
            row = zeek_tsv_row(line, names)
            yield zeek_record(row, stream=stream, source=source, locator=locator, record=n)
        except (RecordError, ValueError) as exc:
            yield ParseError(source, locator, str(exc), record=n, raw=line[:200])


def read_evtx(data: bytes, *, source: str, locator: str) -> Iterator[LogRecord | ParseError]:
    """EVTX through pyevtx-rs; a corrupt chunk or record is reported with its position, the rest is read."""
    import evtx  # local import: the Rust extension is only needed for EVTX input

    try:
        parser = evtx.PyEvtxParser(io.BytesIO(data), number_of_threads=1)
        records = parser.records_json()
    except (OSError, RuntimeError, ValueError) as exc:
        yield ParseError(source, locator, f"not a readable EVTX file: {exc}")
        return
    n = failures = 0
    while True:
        try:
            rec = next(records)
        except StopIteration:
            break
        except (OSError, RuntimeError, ValueError) as exc:
            failures += 1
            yield ParseError(source, locator, f"corrupt EVTX data after record {n}: {exc}", record=n + 1)
            if failures >= 1000:  # the parser is not advancing: stop rather than loop forever
                break
            continue
        n += 1
        if not isinstance(rec, dict):
            yield ParseError(source, locator, "EVTX parser returned no record", record=n)
            continue
        number = int(rec.get("event_record_id") or n)
        try:
            doc = orjson.loads(rec["data"])
            yield to_log_record(doc, source=source, locator=locator, record=number)
        except (orjson.JSONDecodeError, RecordError, ValueError, KeyError) as exc:
            yield ParseError(source, locator, f"bad EVTX record: {exc}", record=number)
