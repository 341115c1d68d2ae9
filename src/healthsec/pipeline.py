"""The pipeline: a source's events through detectors into alerts, stored and correlated into incidents."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from healthsec.analyze.correlate import StreamingCorrelator
from healthsec.bus import InProcessBus
from healthsec.detect import AlertingDetector
from healthsec.ingest import ReadReport, Source
from healthsec.model import Alert, Event, Incident, ParseError
from healthsec.store import Store

ALERTS = "alerts"


@dataclass
class PipelineResult:
    """What a run produced; ``errors`` names every record that could not be read, and why."""

    report: ReadReport
    alerts: dict[str, Alert] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)
    detector_failures: list[str] = field(default_factory=list)
    raised_at: dict[str, datetime] = field(default_factory=dict)
    new_events: int = 0
    new_alerts: int = 0


class Pipeline:
    """Runs detectors over time-ordered chunks of events; alerts go over the bus to the store and correlator.

    Events are stored before detection, so nothing accepted is lost if a detector fails; a failing
    detector is recorded and the others go on.
    """

    def __init__(
        self,
        detectors: Sequence[AlertingDetector],
        store: Store,
        *,
        bus: InProcessBus | None = None,
        hosts: Mapping[str, str] | None = None,
        chunk_size: int = 5000,
    ) -> None:
        self.detectors = list(detectors)
        self.store = store
        self.bus = bus or InProcessBus()
        self.correlator = StreamingCorrelator(hosts)
        self.chunk_size = chunk_size
        self._pending: dict[str, Alert] = {}
        self.bus.subscribe(ALERTS, self._on_alert)

    def _on_alert(self, alert: Alert) -> None:
        self._pending[alert.id] = alert

    def fit(self, baseline: Iterable[Event]) -> None:
        events = list(baseline)
        for d in self.detectors:
            d.fit(events)

    def run(self, source: Source, progress: Callable[[int], None] | None = None) -> PipelineResult:
        result = PipelineResult(report=ReadReport())
        chunk: list[Event] = []
        hour: datetime | None = None
        for item in source.read():
            if not result.report.add(item):
                continue
            assert not isinstance(item, ParseError)
            item_hour = item.ts.replace(minute=0, second=0, microsecond=0)
            if chunk and (item_hour != hour or len(chunk) >= self.chunk_size):
                self._process(chunk, result)
                if progress:
                    progress(len(chunk))
                chunk = []
            hour = item_hour
            chunk.append(item)
        if chunk:
            self._process(chunk, result)
            if progress:
                progress(len(chunk))
        result.incidents = self.correlator.incidents()
        self.store.incidents.upsert_many(result.incidents)
        return result

    def _process(self, chunk: list[Event], result: PipelineResult) -> None:
        result.new_events += self.store.events.add_many(chunk)
        for d in self.detectors:
            try:
                alerts = d.detect(chunk)
            except Exception as exc:  # one broken detector must not stop the others
                result.detector_failures.append(f"{d.name}: {type(exc).__name__}: {exc}")
                continue
            for a in alerts:
                self.bus.publish(ALERTS, a)
        self.bus.drain()
        if self._pending:
            batch = list(self._pending.values())
            self._pending.clear()
            seen = {e.id: e.ts for e in chunk}
            for a in batch:
                if a.id not in result.raised_at:
                    # the moment the detector could first raise it: its latest evidence in this chunk
                    result.raised_at[a.id] = max((seen[i] for i in a.evidence if i in seen), default=a.ts)
            result.new_alerts += self.store.alerts.add_many(batch)
            result.alerts.update({a.id: a for a in batch})
            self.correlator.add(batch)
