"""Cached device directory: all devices loaded at start, refreshed every TTL, misses re-queried sparingly."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import NamedTuple, Protocol

from iothub.errors import Unavailable

log = logging.getLogger(__name__)


class Entry(NamedTuple):
    """What the collector needs to know of a registered device."""

    device_type: str
    token_hash: str | None  # sha256 hex of the HTTP ingest token
    registration: str | None = None  # devices.id: a device deleted and registered again gets a new one


class DeviceSource(Protocol):
    """Where devices are registered (collector.edge.repository.PostgresDevices)."""

    def all(self) -> dict[str, Entry]:
        """Every registered device."""

    def one(self, device_id: str) -> Entry | None:
        """One device, None when unknown."""

    def watch(self, on_change: Callable[[str | None], None], stop: threading.Event) -> None:
        """Block, calling on_change(device_id) per change and on_change(None) when changes may have been lost."""


class DeviceDirectory:
    """Implements collector.edge.service.Directory over a DeviceSource."""

    def __init__(self, source: DeviceSource, *, ttl: float = 30.0, miss_interval: float = 3.0):
        self._source = source
        self._ttl = ttl
        self._miss_interval = miss_interval
        self._devices: dict[str, Entry] = {}
        self._misses: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        # A change notified while a read was under way must win over that read's (older) answer.
        self._generation = 0
        self._changed_at: dict[str, int] = {}  # device_id -> generation of its latest change notice

    def start(self) -> DeviceDirectory:
        """Load every device (best effort) and refresh on a daemon thread."""
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="device-directory", daemon=True)
        self._thread.start()
        self._watcher = threading.Thread(target=self._source.watch, args=(self._changed, self._stop),
                                         name="device-directory-watch", daemon=True)
        self._watcher.start()
        return self

    def _changed(self, device_id: str | None) -> None:
        # Forget the entry: the next message looks the device up again (deleted: refused; new unit: new history).
        if device_id is None:
            self.refresh()
            return
        with self._lock:
            self._generation += 1
            self._changed_at[device_id] = self._generation
            self._devices.pop(device_id, None)
            self._misses.pop(device_id, None)

    def stop(self) -> None:
        """Stop refreshing."""
        self._stop.set()

    def refresh(self) -> bool:
        """Reload every device; False when the database is down (the old cache stays)."""
        began = self._generation
        try:
            devices = self._source.all()
        except Unavailable as exc:
            log.warning("device directory refresh failed", extra={"error": str(exc)})
            return False
        with self._lock:
            for device_id in [d for d, gen in self._changed_at.items() if gen > began]:
                devices.pop(device_id, None)  # changed while we read: looked up again on its next message
            self._changed_at = {d: gen for d, gen in self._changed_at.items() if gen > began}
            self._devices = devices
            self._misses.clear()
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._ttl):
            self.refresh()

    def _entry(self, device_id: str) -> Entry | None:
        entry = self._devices.get(device_id)
        if entry is not None:
            return entry
        now = time.monotonic()
        with self._lock:
            if now - self._misses.get(device_id, -1e9) < self._miss_interval:
                return None
            self._misses[device_id] = now
        # A device registered since the last refresh becomes usable at once; Unavailable propagates.
        began = self._generation
        try:
            entry = self._source.one(device_id)
        except Unavailable:
            with self._lock:
                self._misses.pop(device_id, None)
            raise
        if entry is not None:
            with self._lock:
                if self._changed_at.get(device_id, 0) <= began:  # else a newer change than this answer arrived
                    self._devices[device_id] = entry
                self._misses.pop(device_id, None)
        return entry

    def cached(self, device_id: str) -> Entry | None:
        """The device's entry if it is in memory; never queries (safe on the I/O loop for junk ids)."""
        return self._devices.get(device_id)

    def lookup(self, device_id: str) -> Entry | None:
        """The device's entry, None when it is not registered."""
        return self._entry(device_id)

    def device_type(self, device_id: str) -> str | None:
        """The device's type name, None when it is not registered."""
        entry = self._entry(device_id)
        return entry.device_type if entry else None

    def token_hash(self, device_id: str) -> str | None:
        """sha256 hex of the device's HTTP ingest token."""
        entry = self._entry(device_id)
        return entry.token_hash if entry else None
