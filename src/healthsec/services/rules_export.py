"""``healthsec rules export``: the Sigma set healthsec runs, converted to a SIEM's query language by pySigma.

Each target is a pySigma backend with the processing pipeline that maps Sigma's Windows field names to the
SIEM's (Splunk's Windows add-on names, Elastic's ECS). A rule a backend cannot convert is listed with the
reason; the export never stops on one rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _splunk() -> Any:
    from sigma.backends.splunk import SplunkBackend
    from sigma.pipelines.splunk import splunk_windows_pipeline

    return SplunkBackend(splunk_windows_pipeline())


def _lucene() -> Any:
    from sigma.backends.elasticsearch import LuceneBackend
    from sigma.pipelines.elasticsearch.windows import ecs_windows

    return LuceneBackend(ecs_windows())


def _esql() -> Any:
    from sigma.backends.elasticsearch import ESQLBackend
    from sigma.pipelines.elasticsearch.windows import ecs_windows

    return ESQLBackend(ecs_windows())


def _eql() -> Any:
    from sigma.backends.elasticsearch import EqlBackend
    from sigma.pipelines.elasticsearch.windows import ecs_windows

    return EqlBackend(ecs_windows())


def _opensearch() -> Any:
    from sigma.backends.opensearch import OpensearchLuceneBackend
    from sigma.pipelines.elasticsearch.windows import ecs_windows

    return OpensearchLuceneBackend(ecs_windows())


# target -> (backend factory, PyPI package that ships it, what the queries are)
TARGETS: dict[str, tuple[Callable[[], Any], str, str]] = {
    "splunk": (_splunk, "pysigma-backend-splunk", "SPL searches (Splunk Windows add-on field names)"),
    "elasticsearch": (_lucene, "pysigma-backend-elasticsearch", "Lucene queries over ECS fields"),
    "elasticsearch-esql": (_esql, "pysigma-backend-elasticsearch", "ES|QL queries over ECS fields"),
    "elasticsearch-eql": (_eql, "pysigma-backend-elasticsearch", "EQL queries over ECS fields"),
    "opensearch": (_opensearch, "pysigma-backend-opensearch", "OpenSearch Lucene queries over ECS fields"),
}


class ExportError(ValueError):
    """The target is unknown or its backend is not installed; the text says which package to install."""


@dataclass
class Exported:
    target: str
    queries: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)


def backend_for(target: str) -> Any:
    if target not in TARGETS:
        raise ExportError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    factory, package, _ = TARGETS[target]
    try:
        return factory()
    except ImportError:
        raise ExportError(
            f"target {target}: the backend is not installed (pip install --no-deps {package})"
        ) from None


def _rules(texts: Iterable[tuple[str, str]], failures: list[dict[str, str]]) -> Iterator[tuple[str, Any]]:
    from sigma.collection import SigmaCollection

    for path, text in texts:
        try:
            coll = SigmaCollection.from_yaml(text, collect_errors=True)
        except Exception as exc:  # a file pySigma cannot read at all (YAML errors and their kin)
            failures.append({"rule": path, "title": "", "reason": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        for rule in coll.rules:
            if getattr(rule, "errors", None):
                reason = "; ".join(str(e) for e in rule.errors)[:300]
                failures.append({"rule": str(rule.id or path), "title": rule.title or "", "reason": reason})
                continue
            yield path, rule


def export(target: str, texts: Iterable[tuple[str, str]]) -> Exported:
    """Convert every rule; what fails is listed (rule id or file, title, reason)."""
    from sigma.rule import SigmaRule

    backend = backend_for(target)
    out = Exported(target)
    for path, rule in _rules(texts, out.failures):
        rid = str(rule.id or path)
        title = rule.title or ""
        if not isinstance(rule, SigmaRule):  # correlation rules need their base rules in the same run
            out.failures.append({"rule": rid, "title": title, "reason": "correlation rule: not exported"})
            continue
        try:
            queries = backend.convert_rule(rule)
        except Exception as exc:  # pySigma raises many types (SigmaError, NotImplementedError, ...)
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            out.failures.append({"rule": rid, "title": title, "reason": reason})
            continue
        if not queries:
            out.failures.append({"rule": rid, "title": title, "reason": "the backend produced no query"})
            continue
        out.queries.append(
            {
                "rule": rid,
                "title": title,
                "level": str(rule.level.name).lower() if rule.level else None,
                "tags": [str(t) for t in rule.tags],
                "file": Path(path).name,
                "query": queries[0] if len(queries) == 1 else list(queries),
            }
        )
    return out
