"""Read MITRE TRAM 2 annotated reports (MAT ``.mjson``, in a folder or the shipped ``.tar.gz``) as
sentences labelled with TRAM's 50 ATT&CK classes, grouped by report (splits are by report, never by
sentence: sentences of one report are near-duplicates)."""

from __future__ import annotations

import random
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from healthsec.analyze.text_attack import sentence_spans

_TECH = re.compile(r"\((T\d{4}(?:\.\d{3})?)\)\s*$")


@dataclass(frozen=True, slots=True)
class Report:
    title: str
    sentences: tuple[str, ...]
    labels: tuple[frozenset[str], ...]

    @property
    def techniques(self) -> frozenset[str]:
        return frozenset().union(*self.labels) if self.labels else frozenset()


def collapse(technique: str, classes: frozenset[str]) -> str | None:
    """TRAM's 50 model classes: a sub-technique outside them counts as its parent when that is a class."""
    if technique in classes:
        return technique
    parent = technique.split(".")[0]
    return parent if parent in classes else None


def report_from_mjson(doc: dict[str, Any], title: str, classes: frozenset[str]) -> Report:
    signal = str(doc["signal"])
    spans: list[tuple[int, int, str]] = []
    for aset in doc.get("asets") or []:
        m = _TECH.search(str(aset.get("type", "")))
        if not m:
            continue
        cls = collapse(m.group(1), classes)
        if cls is None:
            continue
        for annot in aset.get("annots") or []:
            spans.append((int(annot[0]), int(annot[1]), cls))
    # skip the "title: ... url: ..." header lines TRAM puts before the text
    body_start = 0
    for line in signal.splitlines(keepends=True)[:2]:
        if line.startswith(("title:", "url:")):
            body_start += len(line)
    sentences, labels = [], []
    for start, end in sentence_spans(signal, body_start):
        sentences.append(signal[start:end])
        labels.append(frozenset(c for s, e, c in spans if s < end and e > start))
    return Report(title, tuple(sentences), tuple(labels))


def _mjson_members(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_dir():
        for f in sorted(path.glob("*.mjson")):
            yield f.stem, f.read_bytes()
        return
    with tarfile.open(path, "r:gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if member.isfile() and member.name.endswith(".mjson"):
                fh = tar.extractfile(member)
                if fh is not None:
                    yield Path(member.name).stem, fh.read()


def load_tram(data: Path) -> tuple[list[Report], list[str]]:
    """Reports and the class list, from the ``tram-attack-annotations`` folder (or a folder of .mjson
    files with a ``classes.txt`` beside them)."""
    if data.is_dir() and (data / "tram2-reports-mjson.tar.gz").is_file():
        classes = (data / "tram2-bert-classes.txt").read_text().split()
        source = data / "tram2-reports-mjson.tar.gz"
    else:
        classes = (data / "classes.txt").read_text().split()
        source = data
    cls = frozenset(classes)
    reports = [report_from_mjson(orjson.loads(raw), title, cls) for title, raw in _mjson_members(source)]
    return reports, classes


def split_by_report(
    reports: list[Report], n_test: int = 31, seed: int = 0
) -> tuple[list[Report], list[Report]]:
    """A fixed split by report: titles sorted, shuffled with ``seed``, the first ``n_test`` held out."""
    order = sorted(reports, key=lambda r: r.title)
    random.Random(seed).shuffle(order)
    return order[n_test:], order[:n_test]
