"""Seen notices: a device heard but not published (a duplicate, a rejected message) is still alive."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from iothub import topology
from iothub.contract import SeenNotice


class NoticePublisher(Protocol):
    """The part of the confirm publisher this needs."""

    def publish(self, exchange: str, routing_key: str, body: bytes, on_confirm: Callable[[bool], None]) -> None:
        """Queue a message; on_confirm(ok) once the broker answered."""


class SeenNotices:
    """Publishes at most one seen notice per device per interval; thread-safe."""

    def __init__(self, publisher: NoticePublisher, *, interval: float, clock: Callable[[], float], partitions: int):
        self._publisher = publisher
        self._partitions = partitions
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()  # MQTT loop and HTTP threads both note

    def note(self, device_id: str, device_type: str, why: str) -> None:
        """Tell the state writer and rule engine the device was heard, unless it was told just now."""
        now = self._clock()
        with self._lock:
            if now - self._last.get(device_id, -1e18) < self._interval:
                return
            self._last[device_id] = now
            if len(self._last) > 100_000:  # a flood of one-off ids must not grow this without bound
                self._last = {k: t for k, t in self._last.items() if now - t < self._interval}
        notice = SeenNotice(device_id, device_type, why, datetime.now(UTC).isoformat())
        # Advisory like gap notices: a lost one costs at most one interval of last_seen accuracy.
        self._publisher.publish(topology.NOTICES_EXCHANGE, topology.notice_key(
            "seen", device_type, device_id, topology.partition_of(device_id, self._partitions)),
                                notice.encode(), lambda ok: None)
