"""Baseline for benchmarks/sigma.py: pySigma's own Windows pipelines + the SQLite backend, per file.

Every rule is converted twice, once with ``sysmon_pipeline() + windows_logsource_pipeline()`` (hosts
with Sysmon) and once with ``windows_audit_pipeline() + windows_logsource_pipeline()`` (hosts with the
Security channel only); a rule fires on a file when either query selects one of its events. Events
live in one in-memory SQLite table per (channel, event id) with every field as a ``TEXT COLLATE
NOCASE`` column (Sigma's plain string matches ignore case; SQLite's ``=`` would not). A query that
names a field the table lacks gets that column added as NULL, which is SQL's reading of a missing
field. Queries are routed to the tables of the channel and event ids they name (a query whose only
event id test is negated would be misrouted; SigmaHQ's Windows rules have none).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence

from healthsec.detect.rules.sigma.evaluate import as_text
from healthsec.model import LogRecord

_CHANNEL = re.compile(r"^SELECT \* FROM logs WHERE Channel='([^']+)'")
_EID = re.compile(r"EventID=(\d+)|EventID IN \(([\d, ]+)\)")
_NO_COLUMN = re.compile(r"no such column: (.+)$")


def _regexp(pattern: str, value: object) -> bool:
    if value is None:
        return False
    try:
        return re.search(pattern, str(value)) is not None
    except re.error:
        return False


def _first(fields: dict[str, object], names: list[str]) -> object:
    for name in names:
        value = fields.get(name)
        if value is not None:
            return value
    return None


def pipeline_queries(texts: dict[str, str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """SQLite queries per rule id through both pipeline sets, and why a rule converts with neither."""
    from sigma.backends.sqlite import sqliteBackend
    from sigma.collection import SigmaCollection
    from sigma.pipelines.sysmon import sysmon_pipeline
    from sigma.pipelines.windows import windows_audit_pipeline, windows_logsource_pipeline

    backends = (
        sqliteBackend(sysmon_pipeline() + windows_logsource_pipeline()),
        sqliteBackend(windows_audit_pipeline() + windows_logsource_pipeline()),
    )
    out: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    for rid, text in texts.items():
        queries: list[str] = []
        why = ""
        for backend in backends:
            try:
                queries.extend(str(q) for q in backend.convert(SigmaCollection.from_yaml(text)))
            except Exception as exc:  # the reference's own limits: counted, not hidden
                why = f"{type(exc).__name__}: {str(exc)[:100]}"
        # A pipeline that does not map the rule's category leaves its query without a Channel test;
        # where the other pipeline placed the rule, that unplaced query is not run (it would search
        # every event for the rule's fields, which no SIEM user of that pipeline pair would do).
        placed = [q for q in queries if _CHANNEL.match(q)]
        if placed:
            queries = placed
        if queries:
            out[rid] = list(dict.fromkeys(queries))
        else:
            failed[rid] = why
    return out, failed


def _route(query: str) -> tuple[str | None, frozenset[int] | None]:
    m = _CHANNEL.match(query)
    channel = m.group(1).lower() if m else None
    ids: set[int] = set()
    for single, many in _EID.findall(query):
        ids.update(int(x) for x in (many.split(",") if many else [single]) if x.strip())
    return channel, frozenset(ids) or None


class PipelineBaseline:
    """The rules converted once; :meth:`run` gives the rule ids that fire per file of one batch."""

    def __init__(self, texts: dict[str, str]) -> None:
        queries, self.failed = pipeline_queries(texts)
        self.converted = len(queries)
        self.routed = [(rid, q, *_route(q)) for rid, qs in queries.items() for q in qs]
        self.seconds = 0.0

    def run(self, files: Sequence[Sequence[LogRecord]]) -> list[set[str]]:
        import time

        fired: list[set[str]] = [set() for _ in files]
        groups: dict[tuple[str, int | None], list[tuple[int, LogRecord]]] = {}
        for f, recs in enumerate(files):
            for r in recs:
                groups.setdefault(((r.channel or "").lower(), r.event_id), []).append((f, r))
        t0 = time.process_time()
        for (channel, eid), rows in groups.items():
            mine = [
                (rid, q)
                for rid, q, ch, ids in self.routed
                if (ch is None or ch == channel) and (ids is None or eid in ids)
            ]
            if mine:
                self._group(rows, mine, fired)
        self.seconds += time.process_time() - t0
        return fired

    def _group(
        self, rows: list[tuple[int, LogRecord]], mine: list[tuple[str, str]], fired: list[set[str]]
    ) -> None:
        spellings: dict[str, list[str]] = {}  # SQLite column names ignore case: ProcessId = ProcessID
        for _, r in rows:
            for k in r.fields:
                names = spellings.setdefault(k.lower(), [])
                if k not in names:
                    names.append(k)
        cols = sorted(names[0] for names in spellings.values())
        variants = [spellings[c.lower()] for c in cols]
        db = sqlite3.connect(":memory:")
        db.create_function("REGEXP", 2, _regexp, deterministic=True)
        coldefs = ", ".join(f'"{c}" TEXT COLLATE NOCASE' for c in cols)
        db.execute(f"CREATE TABLE logs (_f INTEGER{', ' + coldefs if cols else ''})")
        marks = ", ".join("?" for _ in range(len(cols) + 1))
        db.executemany(
            f"INSERT INTO logs VALUES ({marks})",
            ([f] + [as_text(_first(r.fields, names)) for names in variants] for f, r in rows),
        )
        for rid, q in mine:
            sql = q.replace("SELECT *", "SELECT DISTINCT _f", 1)
            for _ in range(20):
                try:
                    for (f,) in db.execute(sql):
                        fired[f].add(rid)
                    break
                except sqlite3.OperationalError as exc:
                    m = _NO_COLUMN.search(str(exc))
                    if m is None:
                        self.failed.setdefault(rid, f"sqlite: {exc}")
                        break
                    db.execute(f'ALTER TABLE logs ADD COLUMN "{m.group(1)}" TEXT COLLATE NOCASE')
        db.close()
