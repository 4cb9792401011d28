"""Desired and reported device configuration, with the update_config command in the same transaction."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from device_manager.repositories.base import Filters, fetch_page
from device_manager.repositories.commands import CommandRepository
from device_manager.service.pagination import Page, PageRequest
from iothub.db import Database

COLUMNS = "c.desired, c.version, c.reported, c.reported_version, c.reported_at, c.updated_by, c.updated_at"
HISTORY_COLUMNS = "h.id, h.cmd_id, h.applied, h.config, h.config_version, h.applied_at, h.recorded_at"
HISTORY_SORT = {"applied_at": "h.applied_at", "recorded_at": "h.recorded_at"}


class ConfigRepository:
    """device_configs rows and their audit, device_config_history (the collector writes reported* and the audit)."""

    def __init__(self, db: Database):
        self.db = db

    def get(self, device_uuid) -> dict[str, Any] | None:
        """The device's config joined with its MQTT id; None when the device does not exist."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"SELECT d.id AS device_uuid, d.device_id, {COLUMNS} FROM devices d "  # noqa: S608
                        "LEFT JOIN device_configs c ON c.device_id = d.id WHERE d.id = %s", (device_uuid,))
            return cur.fetchone()

    def set_desired(self, device_uuid, desired: dict[str, Any], actor: str,
                    decide: Callable[[dict | None, int], int | None],
                    command: Callable[[str, int], dict[str, Any]]) -> tuple[str, dict | None] | None:
        """Lock the row, let `decide(current, version)` pick the new version (None: unchanged), store it and
        the command built by `command(mqtt_device_id, version)`; returns (device_id, command row) or None."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute("SELECT device_id FROM devices WHERE id = %s", (device_uuid,))
            device = cur.fetchone()
            if device is None:
                return None
            cur.execute("INSERT INTO device_configs (device_id) VALUES (%s) ON CONFLICT DO NOTHING", (device_uuid,))
            cur.execute("SELECT desired, version FROM device_configs WHERE device_id = %s FOR UPDATE",
                        (device_uuid,))
            current = cur.fetchone()
            version = decide(current["desired"] if current["version"] else None, current["version"])
            if version is None:
                return device["device_id"], None
            cur.execute("UPDATE device_configs SET desired = %s, version = %s, updated_by = %s, updated_at = now() "
                        "WHERE device_id = %s", (json.dumps(desired), version, actor, device_uuid))
            # The params are the device's flat keys; the version it delivers is kept beside them for the collector.
            row = {**command(device["device_id"], version), "config_version": version}
            CommandRepository(self.db).insert(cur, [row])
            return device["device_id"], row

    def history(self, device_uuid, req: PageRequest) -> Page:
        """A page of the update_config commands the device accepted (newest first by default)."""
        f = Filters().add("h.device_id = %s", device_uuid)
        return fetch_page(self.db, HISTORY_COLUMNS, "device_config_history h", f, req, HISTORY_SORT, "h.id")
