"""Publish/subscribe: in-process queue by default (NATS JetStream to scale out)."""

from healthsec.bus.memory import Bus, Handler, InProcessBus

__all__ = ["Bus", "Handler", "InProcessBus"]
