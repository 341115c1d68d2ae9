"""The one engine: events → detectors → alerts → ATT&CK enrichment → incidents, pure (no I/O).

The demo, the CLI, the service workers and the live sources all drive this class through one adapter
(:mod:`healthsec.pipeline`). Events arrive as time buckets (an hour of event time, sorted by time and
id), so the same events give the same alerts whoever runs them and however they were batched.

Detectors come from the registry (:mod:`healthsec.detect.registry`):

- ``nothing``: rules, run on every bucket from the first one;
- ``learning``: idle while the organisation's learning period runs (by default the first day of event
  time), then fitted once on that period's events — read back through :class:`EventHistory`, so a
  restarted worker rebuilds exactly the same baseline from the store — and run from then on;
- ``model``: wait until a promoted artefact is handed over with :meth:`Engine.set_model`, which can
  happen at any time (a promotion is picked up without a restart).

A detector that raises is isolated: the bucket is retried one event at a time for that detector, each
failing event becomes a :class:`DetectorFailure` (a dead letter naming detector, event and reason), and
the other detectors and events go on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from healthsec.analyze.correlate import StreamingCorrelator
from healthsec.detect.base import AlertingDetector
from healthsec.detect.registry import DetectorContext, DetectorSpec, Unavailable
from healthsec.model import Alert, Event, Incident

log = logging.getLogger(__name__)

BUCKET = timedelta(hours=1)
DEFAULT_LEARNING = timedelta(days=1)


def bucket_of(ts: datetime) -> datetime:
    """The start of the bucket holding ``ts`` (buckets are whole hours of event time)."""
    return ts.replace(minute=0, second=0, microsecond=0)


class EventHistory(Protocol):
    """Read access to events already accepted (the store, or a list in tests)."""

    def between(self, start: datetime, end: datetime) -> Iterable[Event]: ...


@dataclass(frozen=True, slots=True)
class DetectorFailure:
    """A detector raised on one event: a dead letter that can be listed and replayed."""

    detector: str
    event_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class DetectorStatus:
    """What ``healthsec detectors list`` shows for one detector."""

    name: str
    version: str
    needs: str
    state: str  # running | learning | waiting for a model | unavailable | disabled by configuration
    detail: str = ""
    progress: float | None = None  # learning: share of the learning period seen


@dataclass
class StepResult:
    """What one bucket produced: new or grown alerts, the incidents that changed, failures."""

    alerts: list[Alert] = field(default_factory=list)
    raised_at: dict[str, datetime] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)
    failures: list[DetectorFailure] = field(default_factory=list)
    # baselines learnt in this step: detector -> (version, JSON state), for the store to keep
    baselines: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)


@dataclass
class _Slot:
    spec: DetectorSpec
    detector: AlertingDetector | None = None
    fitted: bool = False
    detail: str = ""
    loaded: bool = False  # the baseline came from the store (not refitted)


def baseline_state(detector: object) -> dict[str, Any] | None:
    """A fitted detector's baseline as JSON-ready data, if it can give one (``to_dict``/``load_dict``)."""
    if not (hasattr(detector, "to_dict") and hasattr(detector, "load_dict")):
        return None
    state = detector.to_dict()
    return dict(state) if isinstance(state, Mapping) else None


class _NoHistory:
    def between(self, start: datetime, end: datetime) -> Iterable[Event]:
        del start, end
        return ()


_NO_HISTORY = _NoHistory()


class Engine:
    """Stateful per organisation: detectors, the learning clock, the correlator and the risk model."""

    def __init__(
        self,
        specs: Sequence[DetectorSpec],
        context: DetectorContext,
        *,
        learning: timedelta = DEFAULT_LEARNING,
        kb: Any | None = None,
        disabled: Sequence[DetectorSpec] = (),
        window: timedelta = timedelta(hours=3),
    ) -> None:
        self.context = context
        self.learning = learning
        self.kb = kb
        self.disabled = list(disabled)
        self.learning_start: datetime | None = None
        self.cursor: datetime | None = None  # start of the next bucket to process
        hosts = {a.ip: a.name for a in context.assets if a.ip}
        self.correlator = StreamingCorrelator(hosts, window=window)
        self._slots: list[_Slot] = []
        for spec in specs:
            slot = _Slot(spec)
            if spec.needs != "model" and spec.factory is not None:
                try:
                    slot.detector = spec.factory(context)
                except Unavailable as exc:
                    slot.detail = str(exc)
            self._slots.append(slot)

    # ---- models ------------------------------------------------------------------------------
    def set_model(self, kind: str, loaded: Any | None) -> list[str]:
        """Hand over (``None``: withdraw) the promoted model of ``kind``; return the detectors fed."""
        fed = []
        for slot in self._slots:
            if slot.spec.model_kind != kind or slot.spec.model_factory is None:
                continue
            slot.detector = None if loaded is None else slot.spec.model_factory(loaded)
            slot.fitted = loaded is not None
            slot.detail = "" if loaded is not None else "no promoted model"
            fed.append(slot.spec.name)
        return fed

    def model_kinds(self) -> list[str]:
        """The artefact kinds this engine's model detectors wait for (what a worker watches)."""
        return sorted({s.spec.model_kind for s in self._slots if s.spec.model_kind})

    def detector(self, name: str) -> AlertingDetector | None:
        """The running instance of a registered detector, if it could be built."""
        return next((s.detector for s in self._slots if s.spec.name == name), None)

    def prime(self, baseline: Sequence[Event] = (), prepared: Sequence[str] = ()) -> None:
        """File mode: end the learning period now instead of after ``learning`` of event time.

        Every learning detector is fitted on ``baseline`` (the events of its kinds; none given: it runs
        unfitted, i.e. its content rules only, as ``healthsec scan hl7`` without ``--baseline`` does), except
        the ``prepared`` ones, whose instances arrived fitted (a baseline file loaded by the command).
        """
        for slot in self._slots:
            if slot.spec.needs != "learning" or slot.detector is None or slot.fitted:
                continue
            mine = [e for e in baseline if e.kind in slot.spec.kinds]
            if mine and slot.spec.name not in prepared:
                slot.detector.fit(mine)
            slot.fitted = True

    def scan(self, events: Sequence[Event]) -> StepResult:
        """File mode: run ``events`` (one file or one chunk of it, in the order given) as one step.

        Unlike :meth:`process` there is no learning clock (call :meth:`prime` first) and no bucketing:
        a file is detected as the command read it, so its alerts do not depend on the hour boundaries.
        """
        if not events:
            return StepResult()
        start = bucket_of(min(e.ts for e in events))
        if self.learning_start is None:
            self.learning_start = start
        return self.process(start, events, _NO_HISTORY, max(e.ts for e in events) + timedelta(microseconds=1))

    @property
    def learning_end(self) -> datetime | None:
        return None if self.learning_start is None else self.learning_start + self.learning

    # ---- status ------------------------------------------------------------------------------
    def status(self) -> list[DetectorStatus]:
        out = []
        for slot in self._slots:
            s = slot.spec
            if slot.detector is None and s.needs != "model":
                out.append(DetectorStatus(s.name, s.version, s.needs, "unavailable", slot.detail))
            elif s.needs == "model":
                if slot.detector is None:
                    detail = (
                        slot.detail or f"no promoted {s.model_kind} model (healthsec train, models promote)"
                    )
                    out.append(DetectorStatus(s.name, s.version, s.needs, "waiting for a model", detail))
                else:
                    out.append(DetectorStatus(s.name, slot.detector.version, s.needs, "running"))
            elif s.needs == "learning" and not slot.fitted:
                out.append(
                    DetectorStatus(s.name, s.version, s.needs, "learning", progress=self._learning_progress())
                )
            else:
                detail = (
                    "baseline loaded from the store" if slot.loaded else getattr(slot.detector, "detail", "")
                )
                out.append(DetectorStatus(s.name, s.version, s.needs, "running", detail))
        out.extend(
            DetectorStatus(s.name, s.version, s.needs, "disabled by configuration") for s in self.disabled
        )
        return out

    def _learning_progress(self) -> float:
        if self.learning_start is None or self.cursor is None:
            return 0.0
        seen = (self.cursor - self.learning_start) / self.learning
        return max(0.0, min(1.0, seen))

    # ---- processing --------------------------------------------------------------------------
    def process(
        self, start: datetime, events: Sequence[Event], history: EventHistory, end: datetime | None = None
    ) -> StepResult:
        """Run the events of ``[start, end)``, sorted by (time, id): at most one bucket (default: all of it).

        A service detects the open hour in part when its sources fall quiet, and the rest of that hour
        later; the demo and replays at full speed see whole hours.
        """
        if self.learning_start is None:
            self.learning_start = bucket_of(start)
        end = start + BUCKET if end is None else end
        result = StepResult()
        result.baselines = self._finish_learning(start, history)
        if events:
            seen = {e.id: e.ts for e in events}
            for slot in self._slots:
                if slot.detector is None or (slot.spec.needs == "learning" and not slot.fitted):
                    continue
                alerts = self._detect(slot, events, result.failures)
                for a in alerts:
                    a = self._enrich(a)
                    result.alerts.append(a)
                    result.raised_at.setdefault(
                        a.id, max((seen[i] for i in a.evidence if i in seen), default=a.ts)
                    )
        if result.alerts:
            result.incidents = self.correlator.add(result.alerts)
        self.cursor = end
        return result

    def prepare(self, events: Sequence[Event]) -> None:
        """Hand the events of the next buckets to detectors that can work ahead (``prepare``).

        Only stateless per-record work is done ahead (Sigma matching); what each bucket raises is
        unchanged. An empty sequence drops the look-ahead.
        """
        for slot in self._slots:
            ahead = getattr(slot.detector, "prepare", None)
            if ahead is None or (slot.spec.needs == "learning" and not slot.fitted):
                continue
            try:
                ahead(events)
            except Exception as exc:  # the bucket-by-bucket path still runs (and records failures)
                log.warning("look-ahead of %s failed (%s)", slot.spec.name, type(exc).__name__)
                ahead(())

    def _finish_learning(
        self, start: datetime, history: EventHistory
    ) -> dict[str, tuple[str, dict[str, Any]]]:
        end = self.learning_end
        pending = [s for s in self._slots if s.spec.needs == "learning" and not s.fitted and s.detector]
        if end is None or start < end or not pending:
            return {}
        assert self.learning_start is not None
        baseline = list(history.between(self.learning_start, end))
        learnt = {}
        for slot in pending:
            assert slot.detector is not None
            kinds = slot.spec.kinds
            try:
                slot.detector.fit([e for e in baseline if e.kind in kinds])
                slot.fitted = True
                state = baseline_state(slot.detector)
                if state is not None:
                    learnt[slot.spec.name] = (slot.spec.version, state)
            except Exception as exc:  # a detector that cannot learn is reported, the rest go on
                slot.detail = f"learning failed: {type(exc).__name__}: {exc}"
                slot.detector = None
                log.warning("detector %s could not fit its baseline (%s)", slot.spec.name, type(exc).__name__)
        return learnt

    def load_baselines(self, stored: Mapping[str, tuple[str, Mapping[str, Any]]]) -> list[str]:
        """Give learning detectors the baselines a previous owner learnt (no refit); return the loaded.

        A baseline of another detector version, or one the detector refuses, is ignored: that detector
        refits from the stored learning period as before.
        """
        loaded = []
        for slot in self._slots:
            got = stored.get(slot.spec.name)
            if slot.spec.needs != "learning" or slot.detector is None or slot.fitted or got is None:
                continue
            version, state = got
            if version != slot.spec.version or not hasattr(slot.detector, "load_dict"):
                continue
            try:
                slot.detector.load_dict(state)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning(
                    "stored baseline of %s refused (%s); refitting", slot.spec.name, type(exc).__name__
                )
                continue
            slot.fitted = slot.loaded = True
            loaded.append(slot.spec.name)
        return loaded

    def _detect(self, slot: _Slot, events: Sequence[Event], failures: list[DetectorFailure]) -> list[Alert]:
        assert slot.detector is not None
        try:
            return slot.detector.detect(events)
        except Exception:  # isolate the event(s) it fails on; the others still count
            alerts: list[Alert] = []
            for e in events:
                try:
                    alerts.extend(slot.detector.detect([e]))
                except Exception as exc:
                    failures.append(DetectorFailure(slot.spec.name, e.id, f"{type(exc).__name__}: {exc}"))
            return alerts

    def _enrich(self, alert: Alert) -> Alert:
        if self.kb is None:
            return alert
        from healthsec.analyze.attack import enrich_alert

        return enrich_alert(alert, self.kb)
