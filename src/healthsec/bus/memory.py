"""In-process publish/subscribe bus: the single-machine default."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

Handler = Callable[[Any], None]


class Bus(Protocol):
    """Publish messages on a subject; handlers subscribed to it receive them."""

    def publish(self, subject: str, message: Any) -> None: ...

    def subscribe(self, subject: str, handler: Handler) -> None: ...


@dataclass
class InProcessBus:
    """Queues messages and delivers them in order when drained; a failing handler is recorded, not fatal."""

    _queue: deque[tuple[str, Any]] = field(default_factory=deque)
    _handlers: dict[str, list[Handler]] = field(default_factory=lambda: defaultdict(list))
    failures: list[tuple[str, str]] = field(default_factory=list)
    delivered: int = 0

    def publish(self, subject: str, message: Any) -> None:
        self._queue.append((subject, message))

    def subscribe(self, subject: str, handler: Handler) -> None:
        self._handlers[subject].append(handler)

    def drain(self) -> int:
        """Deliver everything queued (including what handlers publish meanwhile); return the count."""
        count = 0
        while self._queue:
            subject, message = self._queue.popleft()
            for handler in self._handlers.get(subject, ()):
                try:
                    handler(message)
                except Exception as exc:  # a bad handler must not stop the others
                    self.failures.append((subject, f"{type(exc).__name__}: {exc}"))
            count += 1
        self.delivered += count
        return count
