"""device_command_keys: each device's wrapped command key (never selected by any device listing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg2.extras import execute_values

from iothub.db import Database

INFO = """
SELECT d.device_id, k.version, k.created_at, k.rotated_at
FROM devices d LEFT JOIN device_command_keys k ON k.device_id = d.id WHERE d.id = %s
"""
REPLACE = """
INSERT INTO device_command_keys (device_id, wrapped_key) VALUES (%s, %s)
ON CONFLICT (device_id) DO UPDATE SET wrapped_key = EXCLUDED.wrapped_key,
    version = device_command_keys.version + 1, rotated_at = now()
RETURNING version, created_at, rotated_at
"""


class CommandKeyRepository:
    """KeyStore for the key service and key lookup for the signer."""

    def __init__(self, db: Database):
        self.db = db

    def put_many(self, rows: Sequence[tuple[Any, bytes]]) -> None:
        """Insert the keys of new devices."""
        if not rows:
            return
        with self.db.transaction() as cur:
            execute_values(cur, "INSERT INTO device_command_keys (device_id, wrapped_key) VALUES %s",
                           [(str(u), w) for u, w in rows], page_size=1000)

    def replace(self, device_uuid, wrapped: bytes) -> dict[str, Any]:
        """Upsert one device's key, bumping its version."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(REPLACE, (str(device_uuid), wrapped))
            return dict(cur.fetchone())

    def identity(self, device_uuid) -> str | None:
        """The device's MQTT id."""
        with self.db.transaction() as cur:
            cur.execute("SELECT device_id FROM devices WHERE id = %s", (str(device_uuid),))
            row = cur.fetchone()
            return row[0] if row else None

    def info(self, device_uuid) -> dict[str, Any] | None:
        """Key metadata of one device."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(INFO, (str(device_uuid),))
            row = cur.fetchone()
            return dict(row) if row else None

    def wrapped_for(self, device_ids: Sequence[str]) -> dict[str, bytes]:
        """MQTT device_id -> wrapped key, for the devices that have one."""
        with self.db.transaction() as cur:
            cur.execute("SELECT d.device_id, k.wrapped_key FROM device_command_keys k "
                        "JOIN devices d ON d.id = k.device_id WHERE d.device_id = ANY(%s)", (list(device_ids),))
            return {r[0]: bytes(r[1]) for r in cur.fetchall()}
