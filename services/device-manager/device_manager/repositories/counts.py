"""Short-lived totals of large listings: an exact count(*) over tens of thousands of rows was most of a list
request's cost under concurrent load (docs/benchmarks-api.md), and a page walker asks the same count again and
again. Totals under `min_rows` are never cached, so small listings stay exact; larger ones may be `ttl` old."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable


class CountCache:
    """Totals by query key for `ttl` seconds, only when at least `min_rows`; thread-safe, bounded."""

    def __init__(self, *, ttl: float = 2.0, min_rows: int = 10_000, max_entries: int = 1024,
                 clock: Callable[[], float] = time.monotonic):
        self._ttl, self._min_rows, self._max_entries, self._clock = ttl, min_rows, max_entries, clock
        self._totals: dict[Hashable, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> int | None:
        """The cached total, or None when absent or expired."""
        with self._lock:
            hit = self._totals.get(key)
            if hit is None or hit[0] <= self._clock():
                self._totals.pop(key, None)
                return None
            return hit[1]

    def put(self, key: Hashable, total: int) -> None:
        """Remember a large total until it expires."""
        if total < self._min_rows:
            return
        with self._lock:
            if len(self._totals) >= self._max_entries:
                now = self._clock()
                self._totals = {k: v for k, v in self._totals.items() if v[0] > now}
                if len(self._totals) >= self._max_entries:
                    self._totals.clear()
            self._totals[key] = (self._clock() + self._ttl, total)
