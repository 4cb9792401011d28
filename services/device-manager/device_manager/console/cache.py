"""A value recomputed at most every `ttl` seconds: fleet-wide figures are read once per interval per process.

The request that finds the value stale recomputes it on its own thread (so on its own pooled connection, never one
more than the pool has); requests arriving meanwhile get the previous value instead of waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class StaleWhileRefresh:
    """The last value, refreshed by one caller at a time once older than `ttl`."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic):
        self._ttl, self._clock = ttl, clock
        self._value: Any = None
        self._at = 0.0
        self._lock = threading.Lock()

    def get(self, compute: Callable[[], Any]) -> Any:
        """The cached value; the first caller ever waits, later ones only if nothing is cached yet."""
        if self._value is not None and self._clock() - self._at <= self._ttl:
            return self._value
        if self._lock.acquire(blocking=self._value is None):
            try:
                if self._value is None or self._clock() - self._at > self._ttl:
                    self._value, self._at = compute(), self._clock()
            finally:
                self._lock.release()
        return self._value


def cached(name: str, ttl: float, compute: Callable[[], Any]) -> Any:
    """`compute()` through the current app's cache called `name`."""
    from flask import current_app

    caches = current_app.extensions.setdefault("console_cache", {})
    cache = caches.get(name) or caches.setdefault(name, StaleWhileRefresh(ttl))
    return cache.get(compute)
