"""Read a recorded file of another sensor (Suricata EVE, Wazuh, NetFlow) through the one engine.

``healthsec replay --file F --input-format suricata`` sends the parsed events to a running service; without
``--to`` the same events run in this process through :class:`~healthsec.pipeline.Pipeline` over the
store, with the service's detector profile and response hook (so SIEM outputs and playbooks follow).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from healthsec.ingest import Source
from healthsec.model import Event, ParseError
from healthsec.store import Store

INPUT_FORMATS = ("healthsec", "suricata", "wazuh", "netflow")


def source_for(path: Path, fmt: str) -> Source:
    """The source that reads ``path`` as ``fmt``; ValueError for an unknown format."""
    if fmt == "suricata":
        from healthsec.ingest.siem import EveSource

        return EveSource(path)
    if fmt == "wazuh":
        from healthsec.ingest.siem import WazuhAlertsSource

        return WazuhAlertsSource(path)
    if fmt == "netflow":
        from healthsec.ingest.siem.netflow import NetflowFileSource

        return NetflowFileSource([path])
    raise ValueError(f"unknown --input-format {fmt!r}; expected one of {', '.join(INPUT_FORMATS)}")


@dataclass
class FileRun:
    events: int = 0
    new_events: int = 0
    alerts: int = 0
    incidents: int = 0
    errors: list[ParseError] = field(default_factory=list)
    by_detector: dict[str, int] = field(default_factory=dict)


def read_events(source: Source, errors: list[ParseError]) -> Iterator[Event]:
    for item in source.read():
        if isinstance(item, ParseError):
            errors.append(item)
        else:
            yield item


def run_file(store: Store, settings: Any, source: Source) -> FileRun:
    """Store the file's events and detect over them with the configured profile (as the service does)."""
    from healthsec.pipeline import Pipeline, build_engine
    from healthsec.services.playbooks import on_incidents

    pipe = Pipeline(
        build_engine(store, settings),
        store,
        resume=False,
        settings=settings,
        on_incidents=on_incidents,
        event_clock=True,
    )
    result = pipe.run(source)
    out = FileRun(
        events=result.report.events,
        new_events=result.new_events,
        alerts=len(result.alerts),
        incidents=len(result.incidents),
        errors=list(result.report.errors),
    )
    for a in result.alerts.values():
        out.by_detector[a.detector] = out.by_detector.get(a.detector, 0) + 1
    return out
