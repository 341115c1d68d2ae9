"""The outbox dispatcher: deliver queued case notifications, retry with exponential backoff, dead-letter."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from healthsec.respond.notify import DeliveryError, Sender
from healthsec.store import Store
from healthsec.store.cases import cases

BASE_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)


def backoff(attempts: int, base: timedelta = BASE_BACKOFF, cap: timedelta = MAX_BACKOFF) -> timedelta:
    """30 s, 1 min, 2 min, ... capped at one hour."""
    wait: timedelta = base * (2 ** max(0, attempts - 1))
    return min(cap, wait)


def dispatch(
    store: Store,
    senders: Mapping[str, Sender],
    *,
    now: datetime | None = None,
    max_attempts: int = 8,
    limit: int = 100,
) -> dict[str, int]:
    """Deliver every message due now; a message whose channel is not configured waits (and may die)."""
    now = now or datetime.now(UTC)
    repo = cases(store)
    counts = {"sent": 0, "retry": 0, "dead": 0}
    for msg in repo.due_messages(now, limit):
        sender = senders.get(msg["channel"])
        try:
            if sender is None:
                raise DeliveryError(f"{msg['channel']}: channel not configured")
            sender.send(msg["body"])
        except DeliveryError as exc:
            attempts = msg["attempts"] + 1
            if attempts >= max_attempts:
                repo.settle(msg["id"], status="dead", attempts=attempts, last_error=str(exc))
                counts["dead"] += 1
            else:
                repo.settle(
                    msg["id"], attempts=attempts, last_error=str(exc), next_at=now + backoff(attempts)
                )
                counts["retry"] += 1
            continue
        repo.settle(msg["id"], status="sent", attempts=msg["attempts"] + 1, last_error=None)
        counts["sent"] += 1
    return counts


def requeue(store: Store, message_id: str, now: datetime | None = None) -> bool:
    """Give a dead-lettered message another round of attempts (after the target was fixed)."""
    repo = cases(store)
    msg = next((m for m in repo.outbox("dead") if m["id"] == message_id), None)
    if msg is None:
        return False
    repo.settle(message_id, status="pending", attempts=0, next_at=now or datetime.now(UTC))
    return True
