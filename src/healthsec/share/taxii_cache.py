"""Small thread-safe caches for the TAXII server: released objects per partner, and values with a lifetime."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class TtlLru(Generic[T]):
    """A bounded LRU map whose entries expire ``ttl`` seconds after they were stored."""

    def __init__(self, ttl: float, max_items: int) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self._data: OrderedDict[Hashable, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> T | None:
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                return None
            if hit[0] < now:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return hit[1]

    def get_many(self, keys: list[Hashable]) -> list[T | None]:
        """Look up several keys under one lock (a page of objects)."""
        now = time.monotonic()
        out: list[T | None] = []
        with self._lock:
            for key in keys:
                hit = self._data.get(key)
                if hit is None or hit[0] < now:
                    out.append(None)
                else:
                    self._data.move_to_end(key)
                    out.append(hit[1])
        return out

    def put(self, key: Hashable, value: T) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + self.ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_items:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class TtlValue(Generic[T]):
    """One value recomputed by ``load`` at most every ``ttl`` seconds."""

    def __init__(self, load: Callable[[], T], ttl: float) -> None:
        self._load = load
        self.ttl = ttl
        self._value: T | None = None
        self._until = 0.0
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._value is None or time.monotonic() >= self._until:
                self._value = self._load()
                self._until = time.monotonic() + self.ttl
            return self._value
