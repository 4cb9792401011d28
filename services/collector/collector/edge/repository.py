"""PostgreSQL adapter of the device directory's source: registered devices and their change notices."""

from __future__ import annotations

import threading
from collections.abc import Callable

from collector.edge.directory import Entry
from iothub.db import Database
from iothub.db.listen import listen

DEVICES_CHANNEL = "iothub_devices"  # migration 0103: a device_id per registration change

_DEVICES = """SELECT d.device_id, t.name, d.ingest_token_hash, d.id::text FROM devices d
              JOIN device_types t ON t.id = d.device_type_id"""

class PostgresDevices:
    """Reads device_id -> (device type, token hash) from devices joined with device_types."""

    def __init__(self, db: Database):
        self._db = db

    def all(self) -> dict[str, Entry]:
        """Every registered device."""
        with self._db.transaction() as cur:
            cur.execute(_DEVICES)
            return {row[0]: Entry(row[1], row[2], row[3]) for row in cur.fetchall()}

    def one(self, device_id: str) -> Entry | None:
        """One device, None when it is not registered."""
        with self._db.transaction() as cur:
            cur.execute(_DEVICES + " WHERE d.device_id = %s", (device_id,))
            row = cur.fetchone()
        return Entry(row[1], row[2], row[3]) if row else None

    def watch(self, on_change: Callable[[str | None], None], stop: threading.Event) -> None:
        """Call on_change(device_id) per registration change, on_change(None) when changes may have been missed."""
        listen(self._db.dsn, DEVICES_CHANNEL, on_change, stop)
