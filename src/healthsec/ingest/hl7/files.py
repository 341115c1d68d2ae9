"""HL7 v2 from files: plain or batch files (.hl7, .txt, ...) and MLLP-framed dumps; one event per message."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from healthsec.ingest.hl7.mllp import deframe_all
from healthsec.ingest.hl7.parse import message_event, split_messages
from healthsec.model import ClinicalMessage, ParseError

HL7_SUFFIXES = frozenset({".hl7", ".txt", ".er7", ".msg", ".mllp", ".dat"})
PCAP_SUFFIXES = frozenset({".pcap", ".pcapng", ".cap"})


def expand_paths(paths: Iterable[Path], suffixes: frozenset[str]) -> list[Path]:
    """Files named directly, plus files with one of ``suffixes`` under named directories (sorted)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes))
        else:
            out.append(p)
    return out


@dataclass
class HL7FileSource:
    """Reads HL7 v2 messages from files; an unreadable or empty file is a ParseError naming it."""

    paths: list[Path]
    name: str = "hl7-file"

    def read(self) -> Iterator[ClinicalMessage | ParseError]:
        for path in expand_paths(self.paths, HL7_SUFFIXES):
            yield from self._read_file(path)

    def _read_file(self, path: Path) -> Iterator[ClinicalMessage | ParseError]:
        locator = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            yield ParseError(self.name, locator, f"cannot read file: {exc.strerror or exc}")
            return
        received = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        blocks = deframe_all(data) if b"\x0b" in data[:16] else [data]
        record = 0
        for block in blocks:
            text = block.decode("utf-8", "replace")
            messages = split_messages(text)
            if not messages or not any(m.startswith("MSH") for m in messages):
                yield ParseError(
                    self.name, locator, "no HL7 message (no MSH segment) in file", record or None
                )
                continue
            for msg in messages:
                record += 1
                yield message_event(msg, source=self.name, locator=locator, record=record, received=received)
