"""Bus message format for event batches: one JSON envelope per batch, with a stable message id."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

ENVELOPE_VERSION = 1


class PoisonMessage(ValueError):
    """A bus message that can never be processed (undecodable, wrong shape): dead-letter it."""


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Canonical event dicts (``healthsec.model.codec.to_dict`` output) of one organisation."""

    org: str
    events: Sequence[Mapping[str, Any]]
    sensor: str | None = None

    @property
    def msg_id(self) -> str:
        """Stable id of the batch: the broker drops a re-published duplicate inside its window."""
        digest = hashlib.sha256(self.org.encode())
        for e in self.events:
            digest.update(b"\x1f" + str(e.get("id")).encode())
        return digest.hexdigest()[:40]


def encode_batch(batch: EventBatch) -> bytes:
    return orjson.dumps(
        {"v": ENVELOPE_VERSION, "org": batch.org, "sensor": batch.sensor, "events": list(batch.events)}
    )


def decode_batch(data: bytes) -> EventBatch:
    """Parse an envelope; anything malformed raises PoisonMessage with the reason."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise PoisonMessage(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise PoisonMessage("envelope is not a JSON object")
    if obj.get("v") != ENVELOPE_VERSION:
        raise PoisonMessage(f"unsupported envelope version {obj.get('v')!r}")
    org, events = obj.get("org"), obj.get("events")
    if not isinstance(org, str) or not org:
        raise PoisonMessage("envelope has no organisation")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise PoisonMessage("envelope 'events' is not a list of objects")
    sensor = obj.get("sensor")
    return EventBatch(org=org, events=events, sensor=sensor if isinstance(sensor, str) else None)
