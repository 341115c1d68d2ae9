"""The demo service: simulate a hospital day, run the whole pipeline, score it against ground truth."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from healthsec.ingest import IterableSource
from healthsec.pipeline import Pipeline, PipelineResult
from healthsec.sim import CAMPAIGNS, Simulation, simulate
from healthsec.sim.evaluate import Evaluation, evaluate
from healthsec.store import Store

if TYPE_CHECKING:
    from healthsec.config import Settings


@dataclass
class DemoRun:
    baseline: Simulation
    attack_day: Simulation
    result: PipelineResult
    evaluation: Evaluation

    def summary(self) -> dict[str, Any]:
        ev = self.evaluation.as_dict()
        return {
            "seed": self.attack_day.seed,
            "events": self.result.report.events,
            "parse_errors": len(self.result.report.errors),
            "alerts": len(self.result.alerts),
            "incidents": len(self.result.incidents),
            "baseline_events": len(self.baseline.events),
            "new_events_stored": self.result.new_events,
            "new_alerts_stored": self.result.new_alerts,
            "detector_failures": self.result.detector_failures,
            "campaigns": ev["campaigns"],
            "alert_precision": ev["alert_precision"],
            "alert_recall": ev["alert_recall"],
            "event_precision": ev["event_precision"],
            "incident_purity": ev["incident_purity"],
            "false_alerts_per_benign_day": ev["false_alerts_per_benign_day"],
            "false_alerts_learning_day": ev["false_alerts_learning_day"],
            "false_alerts_by_detector": ev["false_alerts_by_detector"],
            "false_alerts_by_hard_negative": ev["false_alerts_by_hard_negative"],
            "metric_definitions": {
                "alert_precision": "share of alerts whose evidence is mostly events of an injected campaign",
                "alert_recall": "share of injected campaign events cited as evidence by at least one alert",
                "event_precision": "share of events cited by alerts that belong to a campaign",
                "first_alert_seconds": "seconds from a campaign's first malicious event to its first alert",
                "false_alerts_per_benign_day": "alerts on the attack day whose evidence is mostly benign "
                "events (a whole day of benign activity with its hard negatives runs beside the campaigns)",
                "false_alerts_learning_day": "alerts on the learning day (rules only run then): all false",
            },
        }


def dry_run_playbooks(store: Store, incidents: Any, settings: Any, now: Any) -> Any:
    """The playbook hook of the demo: simulated addresses and accounts never reach a live adapter."""
    from healthsec.config import load_settings
    from healthsec.services.playbooks import on_incidents

    quiet = (settings or load_settings()).model_copy(update={"containment_live": ()})
    return on_incidents(store, incidents, quiet, now)


def run_demo(
    seed: int,
    store: Store,
    campaigns: Sequence[str] | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    settings: Settings | None = None,
    playbooks: bool = True,
) -> DemoRun:
    """A benign day (the learning period) then the attack day, through the service's engine into ``store``."""
    baseline = simulate(seed, day=0, campaigns=())
    day = simulate(
        seed,
        day=1,
        hospital=baseline.hospital,
        campaigns=tuple(CAMPAIGNS) if campaigns is None else campaigns,
    )
    events = sorted([*baseline.events, *day.events], key=lambda e: (e.ts, e.id))
    if on_total:
        on_total(len(events))
    store.assets.upsert_many(day.assets)
    from healthsec.pipeline import build_engine

    # the service's engine and default profile: the benign day is the learning period
    engine = build_engine(store, settings, assets=day.assets)
    pipeline = Pipeline(
        engine,
        store,
        resume=False,
        event_clock=True,
        settings=settings,
        on_incidents=dry_run_playbooks if playbooks else None,  # the campaigns' playbooks open cases
    )
    result = pipeline.run(IterableSource("sim", events), progress=progress)
    evaluation = evaluate(
        list(result.alerts.values()),
        result.incidents,
        day.labels,
        day.campaigns,
        result.raised_at,
        hard_negatives=day.hard_negatives,
    )
    store.audit.record("healthsec demo", "demo.run", target=f"seed {seed}", alerts=len(result.alerts))
    return DemoRun(baseline=baseline, attack_day=day, result=result, evaluation=evaluation)
