"""Use case: which detectors run for an organisation, in what state, and what failed (dead letters)."""

from __future__ import annotations

from typing import Any

from healthsec.config import Settings
from healthsec.store import Store


def detector_states(store: Store, settings: Settings) -> list[dict[str, Any]]:
    """Each registered detector with its state: running, learning (progress), waiting, disabled.

    The state is what the engine recorded at its last step for this organisation; before any event
    it is what a fresh engine of this configuration would run.
    """
    from healthsec.store.detection import detection

    recorded = detection(store).get().status
    if recorded:
        return [dict(s) for s in recorded]
    return _fresh_states(store, settings)


def _fresh_states(store: Store, settings: Settings) -> list[dict[str, Any]]:
    """What an engine of this configuration runs on its first event, without parsing the Sigma set."""
    from healthsec.detect.registry import DetectorContext, Profile, Unavailable
    from healthsec.pipeline import default_sigma_paths, registered_specs
    from healthsec.store.models import models

    profile = Profile(
        tuple(settings.detectors), tuple(settings.detectors_disabled), registered_specs(settings)
    )
    run, off = profile.resolve()
    ctx = DetectorContext()
    out = []
    for spec in run:
        state, detail = {"nothing": "running", "learning": "learning", "model": "running"}[spec.needs], ""
        if spec.name == "sigma":
            paths = settings.sigma_rules
            if paths is None:
                paths = tuple(default_sigma_paths(settings))
            if not paths or not all(p.exists() for p in paths):
                state, detail = (
                    "unavailable",
                    "no Sigma rules found (set sigma_rules, or shared_data to a folder with sigma-rules/)",
                )
        elif spec.needs == "model":
            if models(store).promoted(spec.model_kind or "") is None:
                state, detail = "waiting for a model", f"no promoted {spec.model_kind} model"
        elif spec.factory is not None:
            try:
                spec.factory(ctx)
            except Unavailable as exc:
                state, detail = "unavailable", str(exc)
        progress = 0.0 if state == "learning" else None
        out.append(
            {
                "name": spec.name,
                "version": spec.version,
                "needs": spec.needs,
                "state": state,
                "detail": detail,
                "progress": progress,
            }
        )
    out.extend(
        {
            "name": s.name,
            "version": s.version,
            "needs": s.needs,
            "state": "disabled by configuration",
            "detail": "",
            "progress": None,
        }
        for s in off
    )
    return out


def dead_letters(store: Store, detector: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """Events a detector raised on: detector, event id, reason, when (newest first)."""
    from healthsec.store.detection import detection

    return [
        {
            "id": d.id,
            "detector": d.detector,
            "event_id": d.event_id,
            "reason": d.reason,
            "at": d.at.isoformat(),
        }
        for d in detection(store).dead_letters(detector, limit)
    ]


def replay_dead_letters(store: Store, settings: Settings) -> dict[str, int]:
    """Run each dead-lettered event again through its detector; those that pass leave the list."""
    from healthsec.detect.registry import BY_NAME
    from healthsec.pipeline import build_engine
    from healthsec.store.detection import detection

    repo = detection(store)
    letters = repo.dead_letters(limit=10_000)
    engine = build_engine(
        store, settings, specs=[BY_NAME[n] for n in {d.detector for d in letters} if n in BY_NAME]
    )
    passed, still, alerts = [], 0, []
    for d in letters:
        detector = engine.detector(d.detector)
        event = store.events.get(d.event_id) if d.event_id else None
        if detector is None or event is None:
            still += 1
            continue
        try:
            alerts.extend(detector.detect([event]))
        except Exception:  # still failing: stays in the list
            still += 1
            continue
        passed.append(d.id)
    if alerts:
        store.alerts.add_many(alerts)
    repo.remove_dead_letters(passed)
    return {"replayed": len(passed), "still_failing": still, "alerts": len(alerts)}
