"""Polling for tests of live servers: wait for a condition without asserting on elapsed time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], timeout: float = 20.0, step: float = 0.02) -> bool:
    """Poll ``condition`` until it is truthy or ``timeout`` seconds pass; return whether it became true."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())
