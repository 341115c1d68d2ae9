"""Read the CISA KEV catalogue and FIRST EPSS daily scores from files (JSON / CSV, gzipped or not).

A file of an unknown layout, or with any bad record, is refused whole with the reason: a half-loaded
catalogue would silently clear the known-exploited flag of the CVEs it missed.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import orjson

from healthsec.analyze.vulns import VulnError, normalise_cve

MAX_BYTES = 200 * 1024 * 1024


class FeedError(ValueError):
    """A KEV or EPSS file refused as a whole; the message names the file, the record and the reason."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KevEntry:
    cve: str
    vendor: str | None = None
    product: str | None = None
    name: str | None = None
    date_added: str | None = None
    due_date: str | None = None
    ransomware: bool | None = None


@dataclass(frozen=True, slots=True)
class KevCatalogue:
    version: str  # catalogVersion, or the newest dateAdded of a CSV
    released: date
    entries: dict[str, KevEntry] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EpssScores:
    model_version: str | None
    score_date: date
    scores: dict[str, tuple[float, float | None]] = field(default_factory=dict)  # cve -> (epss, percentile)


def read_text(raw: bytes, name: str) -> str:
    """Bytes of a (possibly gzipped) UTF-8 file as text; binary or non-UTF-8 input is refused."""
    if len(raw) > MAX_BYTES:
        raise FeedError(f"{name}: larger than {MAX_BYTES} bytes")
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise FeedError(f"{name}: broken gzip ({exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedError(f"{name}: not UTF-8 text (byte {exc.start})") from None


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise FeedError(f"{what}: not a date: {text!r}") from None


def _ransom(text: object) -> bool | None:
    t = str(text or "").strip().lower()
    return True if t == "known" else (False if t == "unknown" else None)


def parse_kev(raw: bytes, name: str) -> KevCatalogue:
    """CISA KEV as published: the JSON catalogue (``catalogVersion``, ``dateReleased``,
    ``vulnerabilities[].cveID``) or its CSV (``cveID,vendorProject,...,dateAdded``)."""
    text = read_text(raw, name)
    entries: dict[str, KevEntry] = {}
    problems: list[str] = []
    if text.lstrip()[:1] == "{":
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise FeedError(f"{name}: not valid JSON ({exc})") from None
        recs = doc.get("vulnerabilities")
        if not isinstance(recs, list) or "catalogVersion" not in doc or "dateReleased" not in doc:
            raise FeedError(
                f"{name}: unknown layout (expected CISA KEV JSON with catalogVersion, dateReleased and "
                "a vulnerabilities list)"
            )
        version, released = (
            str(doc["catalogVersion"]),
            _day(str(doc["dateReleased"]), f"{name}: dateReleased"),
        )
        rows = [(i, r) for i, r in enumerate(recs, 1)]
    else:
        reader = csv.DictReader(io.StringIO(text))
        if "cveID" not in (reader.fieldnames or []) or "dateAdded" not in (reader.fieldnames or []):
            raise FeedError(
                f"{name}: unknown layout (expected the CISA KEV CSV with cveID and dateAdded columns)"
            )
        rows = [(i + 2, r) for i, r in enumerate(reader)]
        version, released = "", date.min
    for n, r in rows:
        if not isinstance(r, dict):
            problems.append(f"record {n}: not an object")
            continue
        try:
            cve = normalise_cve(str(r.get("cveID") or ""))
        except VulnError as exc:
            problems.append(f"record {n}: {exc}")
            continue
        added = str(r.get("dateAdded") or "") or None
        if added and not re.match(r"^\d{4}-\d{2}-\d{2}", added):
            problems.append(f"record {n} ({cve}): dateAdded {added!r} is not a date")
            continue
        entries[cve] = KevEntry(
            cve=cve,
            vendor=r.get("vendorProject") or None,
            product=r.get("product") or None,
            name=r.get("vulnerabilityName") or None,
            date_added=added,
            due_date=r.get("dueDate") or None,
            ransomware=_ransom(r.get("knownRansomwareCampaignUse")),
        )
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise FeedError(f"{name}: {len(problems)} bad record(s), nothing loaded: {shown}")
    if not entries:
        raise FeedError(f"{name}: no entries")
    if not version:  # a CSV carries no catalogue version: its newest entry dates it
        newest = max(e.date_added or "" for e in entries.values())
        version, released = newest, _day(newest, f"{name}: dateAdded")
    return KevCatalogue(version, released, entries)


_EPSS_HEAD = re.compile(r"^#\s*model_version:([^,]*),\s*score_date:(\S+)")


def parse_epss(raw: bytes, name: str, score_date: date | None = None) -> EpssScores:
    """FIRST's daily EPSS CSV: ``#model_version:...,score_date:...`` then ``cve,epss,percentile``."""
    text = read_text(raw, name)
    lines = text.splitlines()
    model = None
    if lines and lines[0].startswith("#"):
        m = _EPSS_HEAD.match(lines[0])
        if m is None:
            raise FeedError(f"{name}: unknown header line {lines[0][:80]!r}")
        model, score_date = m.group(1), _day(m.group(2), f"{name}: score_date")
        lines = lines[1:]
    if score_date is None:
        raise FeedError(f"{name}: no '#model_version:...,score_date:...' line; give the score date")
    reader = csv.reader(lines)
    header = [h.strip().lower() for h in next(reader, [])]
    if header[:2] != ["cve", "epss"]:
        raise FeedError(f"{name}: unknown layout (expected columns cve,epss[,percentile], got {header[:4]})")
    scores: dict[str, tuple[float, float | None]] = {}
    problems: list[str] = []
    for n, row in enumerate(reader, 3 if model is not None else 2):
        if not row:
            continue
        try:
            cve = normalise_cve(row[0])
            p = float(row[1])
            pct = float(row[2]) if len(row) > 2 and row[2].strip() else None
            if not 0.0 <= p <= 1.0 or (pct is not None and not 0.0 <= pct <= 1.0):
                raise ValueError(f"score {row[1]!r} outside 0..1")
        except (VulnError, ValueError, IndexError) as exc:
            problems.append(f"line {n}: {exc}")
            continue
        scores[cve] = (p, pct)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise FeedError(f"{name}: {len(problems)} bad line(s), nothing loaded: {shown}")
    if not scores:
        raise FeedError(f"{name}: no scores")
    return EpssScores(model, score_date, scores)


def read_kev_file(path: Path) -> KevCatalogue:
    try:
        return parse_kev(path.read_bytes(), path.name)
    except OSError as exc:
        raise FeedError(f"{path.name}: cannot read ({exc.strerror})") from None


def read_epss_file(path: Path, score_date: date | None = None) -> EpssScores:
    try:
        return parse_epss(path.read_bytes(), path.name, score_date)
    except OSError as exc:
        raise FeedError(f"{path.name}: cannot read ({exc.strerror})") from None
