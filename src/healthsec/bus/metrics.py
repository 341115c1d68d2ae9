"""Prometheus metrics of a running service (API, worker, live source): events in, alerts out, lag, errors."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


@dataclass
class ServiceMetrics:
    """One registry per process role, so tests and several apps in one process never collide."""

    role: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events_in = Counter("healthsec_events_in", "Events accepted", ["role", "source"], registry=r)
        self.events_written = Counter(
            "healthsec_events_written", "Events newly written to the store", ["role"], registry=r
        )
        self.alerts_out = Counter("healthsec_alerts_out", "Alerts raised", ["role"], registry=r)
        self.errors = Counter(
            "healthsec_errors", "Rejected records and failed batches", ["role", "kind"], registry=r
        )
        self.dead_letters = Counter(
            "healthsec_dead_letters", "Messages sent to the dead-letter subject", ["role"], registry=r
        )
        self.lag = Gauge(
            "healthsec_bus_lag", "Messages waiting on the bus (None until known)", ["role"], registry=r
        )
        self.up = Gauge("healthsec_up", "1 while the component runs", ["role", "component"], registry=r)
        self.latency = Histogram(
            "healthsec_http_request_seconds",
            "API latency by route",
            ["method", "route", "status"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
