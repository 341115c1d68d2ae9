"""Bus message format for event batches: one JSON envelope per batch, with a stable message id."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

ENVELOPE_VERSION = 1
SIGNATURE_HEADER = "Healthsec-Signature"
_SIG_PREFIX = "v1="


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


def sign_envelope(key: bytes, data: bytes) -> str:
    """The signature header value of an encoded envelope: HMAC-SHA256 over the exact bytes published."""
    return _SIG_PREFIX + hmac.new(key, b"healthsec-bus-v1\n" + data, hashlib.sha256).hexdigest()


def verify_envelope(key: bytes | None, data: bytes, headers: Mapping[str, str] | None) -> bool:
    """True when ``data`` carries a valid signature by ``key`` (any message passes when no key is set)."""
    if key is None:
        return True
    given = (headers or {}).get(SIGNATURE_HEADER)
    if not isinstance(given, str) or not given.startswith(_SIG_PREFIX):
        return False
    return hmac.compare_digest(given.encode(), sign_envelope(key, data).encode())
