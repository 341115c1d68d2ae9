"""The composition root: builds adapters from Settings; shared by the API, the CLI and workers."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from healthsec.bus import InProcessBus
from healthsec.config import Settings, load_settings
from healthsec.store import Store

if TYPE_CHECKING:
    from healthsec.bus.nats import NatsConfig
    from healthsec.detect.registry import DetectorSpec
    from healthsec.engine import Engine
    from healthsec.model import Asset


def resolve_db(db: str | None) -> str:
    """``--db`` wins, then ``HEALTHSEC_DB``, then the embedded default."""
    if db:
        return db
    return os.environ.get("HEALTHSEC_DB") or load_settings().db


def open_store(db: str | None = None, org: str | None = None, settings: Settings | None = None) -> Store:
    """Open (and migrate) the store named by ``db`` or the settings."""
    settings = settings or load_settings()
    return Store.open(resolve_db(db), org or settings.org)


def make_bus(settings: Settings | None = None) -> InProcessBus:
    """The in-process bus (the single-machine default); with ``bus = "nats"`` see :func:`nats_config`."""
    del settings  # the NATS transport is asynchronous: the API and workers build it from nats_config()
    return InProcessBus()


def nats_config(settings: Settings | None = None) -> NatsConfig:
    """The JetStream names and limits the settings ask for (used by the API and ``healthsec worker``)."""
    from healthsec.bus.nats import NatsConfig

    s = settings or load_settings()
    return NatsConfig(
        url=s.nats_url,
        stream=s.nats_stream,
        prefix=s.nats_subject,
        durable=s.nats_durable,
        max_attempts=s.worker_max_attempts,
        ack_wait=s.worker_ack_wait_s,
        fetch=s.worker_fetch,
    )


# ---- the engine, built once from the settings (demo, CLI, service, workers) -------------------------
_SIGMA_CACHE: dict[tuple[str, ...], object] = {}
SIGMA_FOLDERS = ("rules", "rules-emerging-threats")


def default_sigma_paths() -> list[Path]:
    """The SigmaHQ set of the shared data beside a source checkout, when it is there."""
    root = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sigma-rules"
    return [root / d for d in SIGMA_FOLDERS if (root / d).is_dir()]


def sigma_ruleset(settings: Settings) -> object | None:
    """The Sigma rules the settings name (parsed once per process); None when there are none."""
    paths = list(settings.sigma_rules) if settings.sigma_rules is not None else default_sigma_paths()
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
    ctx = DetectorContext(
        assets=tuple(store.assets.list() if assets is None else assets),
        sigma_rules=sigma_ruleset(s) if needs_sigma else None,
    )
    return Engine(run, ctx, learning=timedelta(hours=s.learning_hours), kb=load_attack(), disabled=off)
