"""TAXII partner sign-in: scrypt secrets checked with equal work for every name, back-off after failures.

The :class:`Throttle` also guards the REST bearer tokens (``healthsec.api.auth.TokenGate``).

* **Equal work.** An unknown partner name costs the same scrypt as a known name with a wrong secret
  (a check against a fixed dummy hash), so names cannot be told apart by response time.
* **Back-off.** After ``free`` failed checks from one client address, or for one partner name, further
  attempts are answered 429 with ``Retry-After`` and no secret is checked (so password guessing cannot
  use up the CPU other clients need); the wait doubles per failure up to ``cap`` seconds and a success
  clears the name's count.
* **No stale credentials.** Successful checks are remembered for ``ttl`` seconds under a digest of the
  name, the secret *and the stored hash*: the hash is read on every request, so a rotated or removed
  secret stops working at once while repeat requests still skip the deliberate scrypt cost.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable

from healthsec.store.sharing import hash_secret, verify_secret

_dummy_hash: str | None = None


def dummy_hash() -> str:
    """A hash of a random secret, for unknown names (made once per process)."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_secret(hashlib.sha256(str(time.time_ns()).encode()).hexdigest())
    return _dummy_hash


class SignInRefused(Exception):
    """Sign-in refused: ``retry_after`` is set when the caller is throttled (429), else None (401)."""

    def __init__(self, reason: str, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Throttle:
    """Failure counts per key with an exponential wait once more than ``free`` have failed."""

    def __init__(self, free: int = 5, base: float = 1.0, cap: float = 300.0, forget: float = 900.0) -> None:
        self.free, self.base, self.cap, self.forget = free, base, cap, forget
        self._fails: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str, now: float | None = None) -> float:
        """Seconds before ``key`` may try again (0: now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            count, last = self._fails.get(key, (0, 0.0))
            if count and now - last > self.forget:
                self._fails.pop(key, None)
                return 0.0
        if count < self.free:
            return 0.0
        delay = min(self.cap, self.base * 2 ** (count - self.free))
        return max(0.0, last + delay - now)

    def failed(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._fails) > 100_000:  # bounded under a flood of distinct keys
                self._fails.clear()
            count, _ = self._fails.get(key, (0, 0.0))
            self._fails[key] = (count + 1, now)

    def cleared(self, key: str) -> None:
        with self._lock:
            self._fails.pop(key, None)

    # -- one sign-in guarded per client and per name (TAXII partners and REST tokens alike) --------
    def admit(self, client: str, name: str) -> None:
        """Raise SignInRefused with ``retry_after`` while the client or the name must wait."""
        for key in (f"client:{client}", f"name:{name}"):
            wait = self.wait(key)
            if wait > 0:
                raise SignInRefused("too many failed sign-ins; try later", math.ceil(wait))

    def outcome(self, client: str, name: str, ok: bool) -> None:
        """Count a failure against the client and the name; a success clears the name's count."""
        if ok:
            self.cleared(f"name:{name}")
        else:
            self.failed(f"client:{client}")
            self.failed(f"name:{name}")


class PartnerAuth:
    """Checks a partner's HTTP Basic secret against the stored hash (read fresh on every request)."""

    def __init__(self, ttl: float = 60.0, throttle: Throttle | None = None) -> None:
        self.ttl = ttl
        self.throttle = throttle or Throttle()
        self._ok: dict[bytes, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(user: str, secret: str, stored: str) -> bytes:
        return hashlib.sha256(b"\x00".join(x.encode() for x in (user, secret, stored))).digest()

    def check(self, user: str, secret: str, client: str, stored_hash: Callable[[str], str | None]) -> None:
        """Raise SignInRefused unless ``secret`` is ``user``'s current secret."""
        self.throttle.admit(client, user)
        stored = stored_hash(user)
        if stored is not None:
            key = self._key(user, secret, stored)
            with self._lock:
                until = self._ok.get(key)
            if until is not None and until >= time.monotonic():
                return
        ok = verify_secret(secret, stored if stored is not None else dummy_hash()) and stored is not None
        self.throttle.outcome(client, user, ok)
        if not ok:
            raise SignInRefused("unknown partner or wrong secret")
        with self._lock:
            if len(self._ok) > 10_000:
                self._ok.clear()
            self._ok[self._key(user, secret, stored)] = time.monotonic() + self.ttl
