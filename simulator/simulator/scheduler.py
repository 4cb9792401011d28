"""A heap of next-due timers: one thread drives any number of devices."""

from __future__ import annotations

import heapq
import itertools


class Scheduler:
    """Timers keyed (device index, kind); re-arming a timer makes its older entries stale."""

    def __init__(self):
        self._heap: list[tuple[float, int, int, str, int]] = []
        self._order = itertools.count()  # tie-break so equal times pop first-in first-out
        self._tokens: dict[tuple[int, str], int] = {}

    def __len__(self) -> int:
        return len(self._heap)

    def arm(self, due: float, device: int, kind: str) -> None:
        """Schedule `kind` for `device` at `due`, replacing any pending timer of the same kind."""
        key = (device, kind)
        token = self._tokens.get(key, 0) + 1
        self._tokens[key] = token
        heapq.heappush(self._heap, (due, next(self._order), device, kind, token))

    def cancel(self, device: int, kind: str) -> None:
        """Drop the pending timer of that kind."""
        key = (device, kind)
        self._tokens[key] = self._tokens.get(key, 0) + 1

    def next_due(self) -> float | None:
        """When the earliest live timer fires; None when nothing is scheduled."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> tuple[float, int, str] | None:
        """The earliest live timer due at or before `now` as (due, device, kind), or None."""
        self._drop_stale()
        if not self._heap or self._heap[0][0] > now:
            return None
        due, _, device, kind, _ = heapq.heappop(self._heap)
        return due, device, kind

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and self._tokens.get((heap[0][2], heap[0][3])) != heap[0][4]:
            heapq.heappop(heap)
