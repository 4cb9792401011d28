"""Dashboard figures: devices, open events, notifications, dead letters and pipeline rates."""

from __future__ import annotations

from typing import Any, Protocol


class StatsStore(Protocol):
    """Counts and rates from the database."""

    def summary(self, window_s: int = 300) -> dict[str, Any]:
        """The figures over the last window_s seconds."""


class StatsService:
    """Fleet and pipeline figures."""

    def __init__(self, stats: StatsStore):
        self.stats = stats

    def summary(self, window_s: int = 300) -> dict[str, Any]:
        """Devices by status, unresolved events by severity, and rates over the last window_s seconds."""
        return self.stats.summary(window_s)
