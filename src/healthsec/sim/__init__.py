"""A seeded synthetic hospital: benign activity with daily rhythms and labelled attack campaigns."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from healthsec.model import Asset, Event
from healthsec.sim.campaigns import CAMPAIGNS, CampaignInfo
from healthsec.sim.generate import EventLog, benign_day
from healthsec.sim.hard_negatives import hard_negatives, pump_restarts
from healthsec.sim.hospital import ZONES, Hospital, build_hospital

EPOCH = datetime(2026, 3, 2, tzinfo=UTC)


@dataclass
class Simulation:
    """A simulated day: events in time order, and ground truth kept apart from them."""

    seed: int
    hospital: Hospital
    events: list[Event]
    labels: dict[str, str | None]
    campaigns: list[CampaignInfo] = field(default_factory=list)
    hard_negatives: dict[str, str] = field(default_factory=dict)  # benign event id -> look-alike kind

    @property
    def assets(self) -> list[Asset]:
        return list(self.hospital.assets.values())

    @property
    def zones(self) -> dict[str, str]:
        return dict(ZONES)


def simulate(
    seed: int,
    *,
    day: int = 1,
    campaigns: Sequence[str] | None = tuple(CAMPAIGNS),
    hospital: Hospital | None = None,
) -> Simulation:
    """Simulate day ``day`` of the hospital for ``seed``; ``campaigns=()`` gives a benign day."""
    h = hospital or build_hospital(seed)
    start = EPOCH + timedelta(days=day)
    rng = random.Random(seed * 1_000_003 + day)
    log = EventLog(seed=seed, day=day)
    benign_day(h, log, rng, start, pump_restarts(h, log, start))
    hard_negatives(h, log, start)
    infos: list[CampaignInfo] = []
    for name in campaigns or ():
        if name not in CAMPAIGNS:
            raise ValueError(f"unknown campaign {name!r}; known: {sorted(CAMPAIGNS)}")
        infos.append(CAMPAIGNS[name](h, log, random.Random(f"{seed}:{day}:{name}"), start))
    order = sorted(range(len(log.events)), key=lambda i: (log.events[i].ts, log.events[i].id))
    events = [log.events[i] for i in order]
    return Simulation(
        seed=seed,
        hospital=h,
        events=events,
        labels=log.labels,
        campaigns=infos,
        hard_negatives=log.hard_negatives,
    )


__all__ = ["CAMPAIGNS", "CampaignInfo", "Hospital", "Simulation", "build_hospital", "simulate"]
