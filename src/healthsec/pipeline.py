"""The engine's one adapter to the store: accept events, run closed hourly buckets, write what they produce.

Everything that detects goes through :class:`Pipeline`: ``healthsec demo``, the CLI commands, the
in-process service, the NATS workers and the live MLLP, DICOM and MQTT sources. Events are stored first
(idempotent on id), so nothing accepted is lost if a detector fails; detection then reads each closed
bucket back from the store in (time, id) order, so the same events give the same alerts whoever runs
them, however they were batched, on one process or on several workers (a lease in the store lets one
worker at a time advance an organisation).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from healthsec.config import Settings, load_settings
from healthsec.engine import BUCKET, Engine, StepResult, bucket_of
from healthsec.ingest import ReadReport, Source
from healthsec.model import Alert, Event, Incident, ParseError
from healthsec.store import Store

if TYPE_CHECKING:
    from healthsec.detect.base import AlertingDetector
    from healthsec.detect.registry import DetectorSpec
    from healthsec.model import Asset

log = logging.getLogger(__name__)
# (store, incidents that changed, settings, event time or None for the wall clock): the response layer's
# hook, handed in by the composition (``healthsec.services.playbooks.on_incidents``)
IncidentHook = Callable[[Store, Sequence[Incident], Any, datetime | None], Any]
WARM_UP = timedelta(hours=3)  # windowed detectors' longest window: replayed when a worker takes over


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


class _History:
    def __init__(self, store: Store) -> None:
        self.store = store

    def between(self, start: datetime, end: datetime) -> Iterable[Event]:
        return self.store.events.between(start, end)


LOOKAHEAD_EVENTS = 50_000  # events read and matched ahead at most (about; a chunk is whole hours)
LOOKAHEAD_HOURS = 48


def _by_bucket(events: Sequence[Event]) -> Iterator[list[Event]]:
    """Events sorted by time, split into their hours (hours without events yield nothing)."""
    run: list[Event] = []
    for e in events:
        if run and bucket_of(e.ts) != bucket_of(run[0].ts):
            yield run
            run = []
        run.append(e)
    if run:
        yield run


class Pipeline:
    """Drives one organisation's :class:`Engine` over the store.

    ``owner`` names the worker holding the detection lease (``None`` in a single process). With
    ``resume`` the pipeline continues from the cursor the store holds (a worker); without it, it starts
    from the first event it is given (the demo and CLI runs, which re-detect what they read).
    """

    def __init__(
        self,
        engine: Engine,
        store: Store,
        *,
        owner: str | None = None,
        resume: bool = True,
        on_step: Callable[[StepResult], None] | None = None,
        on_incidents: IncidentHook | None = None,
        event_clock: bool = False,
        settings: Settings | None = None,
    ) -> None:
        from healthsec.store.detection import detection

        self.engine = engine
        self.store = store
        self.owner = owner
        self.on_step = on_step
        self.on_incidents = on_incidents
        self.event_clock = event_clock  # cases open at the batch's event time (demo, replay analysis)
        self.settings = settings
        lateness = getattr(settings, "detection_lateness_s", 0.0) if settings is not None else 0.0
        self.lateness = timedelta(seconds=float(lateness))
        self.state = detection(store)
        self._history = _History(store)
        if resume:
            self._restore()

    # ---- restart -----------------------------------------------------------------------------
    def _restore(self) -> None:
        """Rebuild the engine from the store: learning start, learnt baselines (loaded as stored; a
        detector that cannot save its state refits from the stored learning period), windows, incidents."""
        st = self.state.get()
        if st.cursor is None or st.learning_start is None:
            return
        self.engine.learning_start = st.learning_start
        self.engine.load_baselines(self.state.baselines())  # learnt once, kept: no refit on a restart
        start = max(st.learning_start, bucket_of(st.cursor - WARM_UP))
        while start < st.cursor:  # replay recent events so windows are as the last owner left them
            end = min(start + BUCKET, st.cursor)
            self.engine.process(start, list(self._history.between(start, end)), self._history, end)
            start = end
        self.engine.cursor = st.cursor
        recent = self.store.alerts.list(since=st.cursor - timedelta(days=1), limit=50_000)
        if recent:
            self.engine.correlator.add(recent)

    # ---- ingest ------------------------------------------------------------------------------
    def accept(self, events: Sequence[Event], bodies: Sequence[dict[str, Any]] | None = None) -> int:
        """Store events (idempotent) and move the organisation's high-water mark; return how many were new."""
        if not events:
            return 0
        new = self.store.events.add_many(events, bodies)
        self.state.note_ingest(max(e.ts for e in events))
        return new

    # ---- detection ---------------------------------------------------------------------------
    def advance(self, *, final: bool = False, result: PipelineResult | None = None) -> PipelineResult:
        """Run every closed bucket after the cursor (with ``final``, the open last one too)."""
        result = result or PipelineResult(report=ReadReport())
        st = self.state.get()
        if st.max_ts is None:
            return result
        start = self.engine.cursor
        if start is None:
            first = self._first_ts()
            if first is None:
                return result
            start = bucket_of(first)
        # closed hours only: an hour closes once the newest event is ``detection_lateness_s`` past its end
        # (sources that deliver out of order get that long); with ``final`` also what the open hour holds
        # so far (the rest comes later)
        stop = st.max_ts + timedelta(microseconds=1) if final else bucket_of(st.max_ts - self.lateness)
        hours = 1  # look-ahead span: grows while chunks stay small, shrinks when they get large
        try:
            while start < stop:
                span_end = min(bucket_of(start) + hours * BUCKET, stop)
                chunk = list(self._history.between(start, span_end))
                if not chunk:  # jump over hours without events (a stray timestamp must not cost a step)
                    nxt = self.store.events.first_ts(span_end)
                    if nxt is None or nxt >= stop:
                        break
                    start = bucket_of(nxt)
                    continue
                if len(chunk) < LOOKAHEAD_EVENTS // 2:
                    hours = min(hours * 2, LOOKAHEAD_HOURS)
                elif len(chunk) > LOOKAHEAD_EVENTS:
                    hours = max(hours // 2, 1)
                self.engine.prepare(chunk)  # several buckets matched as one batch (same alerts)
                for events in _by_bucket(chunk):
                    bucket = bucket_of(events[0].ts)
                    self._step(max(start, bucket), min(bucket + BUCKET, span_end), events, result)
                start = span_end
        finally:
            self.engine.prepare(())
        return result

    def _first_ts(self) -> datetime | None:
        return self.store.events.first_ts()

    def _step(self, start: datetime, end: datetime, events: list[Event], result: PipelineResult) -> None:
        step = self.engine.process(start, events, self._history, end)
        if step.baselines:
            self.state.save_baselines((n, v, st) for n, (v, st) in step.baselines.items())
        if step.failures:
            self.state.add_dead_letters((f.detector, f.event_id, f.reason) for f in step.failures)
            result.detector_failures.extend(
                f"{f.detector}: event {f.event_id}: {f.reason}" for f in step.failures
            )
        if step.alerts:
            result.new_alerts += self.store.alerts.add_many(step.alerts)
            for a in step.alerts:
                result.alerts[a.id] = a
                result.raised_at.setdefault(a.id, step.raised_at[a.id])
        if step.incidents:
            self.store.incidents.upsert_many(step.incidents)
            if self.on_incidents is not None:
                self._respond(step.incidents, end)
        assert self.engine.cursor is not None
        assert self.engine.learning_start is not None
        status = [dataclasses.asdict(s) for s in self.engine.status()]
        self.state.advance(self.owner, self.engine.cursor, self.engine.learning_start, status)
        if self.on_step is not None:
            self.on_step(step)

    def _respond(self, incidents: list[Incident], end: datetime) -> None:
        """Hand the incidents that changed to the response hook (playbooks); it never stops detection."""
        assert self.on_incidents is not None
        try:
            self.on_incidents(self.store, incidents, self.settings, end if self.event_clock else None)
        except Exception as exc:  # a broken playbook or notification target is reported on its case
            log.warning("playbooks on %d incident(s) failed (%s)", len(incidents), type(exc).__name__)

    def incidents(self) -> list[Incident]:
        """The incidents as they stand now (merged ones gone), most severe first."""
        return self.engine.correlator.incidents()

    # ---- a whole source, in one process ------------------------------------------------------
    def run(
        self, source: Source, progress: Callable[[int], None] | None = None, chunk: int = 5000
    ) -> PipelineResult:
        """Read a source to its end: store, detect every closed bucket as it goes, then the last one."""
        result = PipelineResult(report=ReadReport())
        buf: list[Event] = []
        for item in source.read():
            if not result.report.add(item):
                continue
            assert not isinstance(item, ParseError)
            buf.append(item)
            if len(buf) >= chunk:
                result.new_events += self.accept(buf)
                self.advance(result=result)
                if progress:
                    progress(len(buf))
                buf = []
        if buf:
            result.new_events += self.accept(buf)
            if progress:
                progress(len(buf))
        self.advance(final=True, result=result)
        result.incidents = self.incidents()
        return result


class Detection:
    """One process's share of the service: accepts events for any organisation and advances detection.

    Several processes (the API's in-process sink, ``healthsec worker`` instances) may share a database:
    each organisation's detection is advanced by whichever holds its lease, bucket by bucket, so the
    result is the same as one process reading the same events. A process that lost the lease rebuilds its
    engine from the store before it advances again. Promoted models are picked up while running.
    """

    def __init__(
        self,
        store: Store,
        settings: Any,
        *,
        owner: str,
        metrics: Any | None = None,
        role: str = "worker",
        model_poll_s: float = 5.0,
        specs: Sequence[Any] | None = None,
        on_incidents: IncidentHook | None = None,
    ) -> None:

        self.store = store
        self.settings = settings
        self.owner = owner
        self.metrics = metrics
        self.role = role
        self.model_poll_s = model_poll_s
        self._pipes: dict[str, Pipeline] = {}
        self._watchers: dict[str, Any] = {}
        self._held_until: dict[str, datetime] = {}
        self._last_poll: dict[str, float] = {}
        self.specs = specs
        self.on_incidents = on_incidents
        build_engine(
            store, settings, specs=specs
        )  # fail at start on an unknown detector name or unreadable rules

    def accept(
        self, org: str, events: Sequence[Event], bodies: Sequence[dict[str, Any]] | None = None
    ) -> int:
        """Store a batch for ``org`` (idempotent); return how many events were new."""
        from healthsec.store.detection import detection

        if not events:
            return 0
        store = self.store.for_org(org)
        new = store.events.add_many(events, bodies)
        detection(store).note_ingest(max(e.ts for e in events))
        if self.metrics is not None:
            self.metrics.events_written.labels(self.role).inc(new)
        return new

    def tick(self, *, final: bool = False) -> int:
        """Advance every organisation with stored events past its cursor; return the new alerts."""
        from healthsec.store.detection import detection

        new_alerts = 0
        for org in detection(self.store).orgs_behind():
            store = self.store.for_org(org)
            repo = detection(store)
            now = datetime.now(UTC)
            if not repo.acquire(self.owner, self.settings.detection_lease_s):
                self._pipes.pop(org, None)
                continue
            held = self._held_until.get(org)
            if held is None or held < now:  # not held continuously: another owner may have advanced it
                self._pipes.pop(org, None)
            self._held_until[org] = now + timedelta(seconds=self.settings.detection_lease_s)
            pipe = self._pipe(org, store)
            self._poll_models(org, store, pipe)
            result = pipe.advance(final=final)
            new_alerts += result.new_alerts
        if self.metrics is not None and new_alerts:
            self.metrics.alerts_out.labels(self.role).inc(new_alerts)
        return new_alerts

    def _pipe(self, org: str, store: Store) -> Pipeline:

        if org not in self._pipes:
            engine = build_engine(store, self.settings, specs=self.specs)
            self._pipes[org] = Pipeline(
                engine, store, owner=self.owner, settings=self.settings, on_incidents=self.on_incidents
            )
            self._watchers.pop(org, None)
        return self._pipes[org]

    def _poll_models(self, org: str, store: Store, pipe: Pipeline) -> None:
        import time

        from healthsec.store.models import ModelWatcher

        if time.monotonic() - self._last_poll.get(org, 0.0) < self.model_poll_s and org in self._watchers:
            return
        self._last_poll[org] = time.monotonic()
        kinds = pipe.engine.model_kinds()
        if not kinds:
            return
        watcher = self._watchers.setdefault(org, ModelWatcher(store, kinds))
        for change in watcher.poll():
            fed = pipe.engine.set_model(change.kind, change.loaded)
            state = "loaded" if change.loaded else "withdrawn"
            log.info("model %s for %s %s (detectors %s)", change.kind, org, state, ", ".join(fed))

    def status(self, org: str) -> list[dict[str, Any]]:
        """The detectors of ``org`` as the last advance recorded them (or as a fresh engine has them)."""
        from healthsec.store.detection import detection

        st = detection(self.store.for_org(org)).get()
        if st.status:
            return list(st.status)

        engine = build_engine(self.store.for_org(org), self.settings, specs=self.specs)
        return [dataclasses.asdict(s) for s in engine.status()]

    def release(self) -> None:
        from healthsec.store.detection import detection

        for org in list(self._pipes):
            detection(self.store.for_org(org)).release(self.owner)
        self._pipes.clear()


# ---- the engine, built from the settings (demo, CLI, service, workers) ----------------------------
_SIGMA_CACHE: dict[tuple[str, ...], object] = {}
SIGMA_FOLDERS = ("rules", "rules-emerging-threats")


def default_sigma_paths(settings: Settings) -> list[Path]:
    """The SigmaHQ set in the settings' ``shared_data`` folder (``sigma-rules/``), when it is there."""
    if settings.shared_data is None:
        return []
    root = settings.shared_data / "sigma-rules"
    return [root / d for d in SIGMA_FOLDERS if (root / d).is_dir()]


def sigma_ruleset(settings: Settings) -> object | None:
    """The Sigma rules the settings name (parsed once per process); None when there are none."""
    paths = list(settings.sigma_rules) if settings.sigma_rules is not None else default_sigma_paths(settings)
    if not paths:
        return None
    key = tuple(str(p) for p in paths)
    if key not in _SIGMA_CACHE:
        from healthsec.ingest.logs.rulefiles import load_rules

        _SIGMA_CACHE[key] = load_rules(paths)
    return _SIGMA_CACHE[key]


def registered_specs(settings: Settings) -> tuple[DetectorSpec, ...]:
    """The registry plus the plugins the settings name (``module:name`` of a DetectorSpec)."""
    import importlib

    from healthsec.detect.registry import REGISTRY, DetectorSpec

    extra = []
    for path in settings.detector_plugins:
        module_name, _, attr = path.partition(":")
        try:
            spec = getattr(importlib.import_module(module_name), attr) if module_name and attr else None
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot load detector plugin {path!r}: {exc}") from None
        if not isinstance(spec, DetectorSpec):
            raise ValueError(f"detector plugin {path!r} is not a 'module:name' of a DetectorSpec")
        extra.append(spec)
    return (*REGISTRY, *extra)


def build_engine(
    store: Store,
    settings: Settings | None = None,
    *,
    specs: Sequence[DetectorSpec] | None = None,
    assets: Sequence[Asset] | None = None,
) -> Engine:
    """The engine for ``store``'s organisation: the configured profile (or ``specs``), inventory, ATT&CK.

    An unknown detector name in the settings raises :class:`~healthsec.detect.registry.UnknownDetector`.
    """
    from datetime import timedelta

    from healthsec.detect.registry import DetectorContext, Profile
    from healthsec.engine import Engine
    from healthsec.ingest.attack_data import load_attack

    s = settings or load_settings()
    if specs is not None:
        run, off = list(specs), []
    else:
        run, off = Profile(tuple(s.detectors), tuple(s.detectors_disabled), registered_specs(s)).resolve()
    needs_sigma = any(x.name == "sigma" for x in run)
    from healthsec.config import load_patient_key

    ctx = DetectorContext(
        assets=tuple(store.assets.list() if assets is None else assets),
        sigma_rules=sigma_ruleset(s) if needs_sigma else None,
        phi_key=load_patient_key(s),
        patient_authority=s.patient_id_authority,
    )
    return Engine(run, ctx, learning=timedelta(hours=s.learning_hours), kb=load_attack(), disabled=off)


# ---- file mode: the CLI's scan and detect commands ----------------------------------------------
_KB: list[Any] = []


def attack_kb() -> Any:
    """The pinned ATT&CK knowledge base, parsed once per process (about 1.7 s)."""
    if not _KB:
        from healthsec.ingest.attack_data import load_attack

        _KB.append(load_attack())
    return _KB[0]


def _given(detector: AlertingDetector) -> Callable[[Any], AlertingDetector]:
    def factory(_: Any) -> AlertingDetector:
        return detector

    return factory


class DetectorChoiceError(ValueError):
    """A detector named for a file command is unknown, reads other events, or cannot run."""


def file_engine(
    names: Sequence[str],
    kinds: Iterable[str],
    *,
    settings: Settings | None = None,
    prepared: Mapping[str, AlertingDetector] | None = None,
    baseline: Sequence[Event] = (),
    assets: Sequence[Asset] = (),
    sigma_rules: object | None = None,
) -> Engine:
    """The engine a file command runs (``detect logs|flows|telemetry``, ``scan hl7|dicom|fhir``).

    ``names`` restricts the registry (plus the settings' plugins) to the detectors the command runs; each
    must read one of ``kinds`` (the events the file holds). ``prepared`` hands over instances the command
    built itself (a model loaded from ``--model``, a baseline loaded from a file, a care context read from
    ``--directory``); learning detectors are fitted on ``baseline`` at once (none: they run unfitted, i.e.
    their content rules only). Alerts are ATT&CK-enriched and correlated as in the service.
    """
    from healthsec.config import load_patient_key
    from healthsec.detect.registry import DetectorContext, Profile

    s = settings or load_settings()
    specs = registered_specs(s)
    try:
        run, _ = Profile(tuple(names), (), specs).resolve()
    except ValueError as exc:
        raise DetectorChoiceError(str(exc)) from None
    wanted = set(kinds)
    ready = dict(prepared or {})
    chosen = []
    for spec in run:
        if not spec.kinds & wanted:
            raise DetectorChoiceError(
                f"detector {spec.name} reads {', '.join(sorted(spec.kinds))} events, "
                f"this input holds {', '.join(sorted(wanted))}"
            )
        det = ready.get(spec.name)
        if det is not None:
            spec = dataclasses.replace(spec, factory=_given(det), model_factory=_given(det))
        elif spec.needs == "model":
            raise DetectorChoiceError(f"detector {spec.name} needs a trained model (--model)")
        chosen.append(spec)
    ctx = DetectorContext(
        assets=tuple(assets),
        sigma_rules=sigma_rules,
        phi_key=load_patient_key(s),
        patient_authority=s.patient_id_authority,
    )
    engine = Engine(chosen, ctx, kb=attack_kb())
    for spec in chosen:
        if spec.needs == "model" and spec.model_kind:
            engine.set_model(spec.model_kind, ready[spec.name])
    missing = [st for st in engine.status() if st.state == "unavailable"]
    if missing:
        raise DetectorChoiceError("; ".join(f"detector {st.name}: {st.detail}" for st in missing))
    engine.prime(baseline, prepared=list(ready))
    return engine
