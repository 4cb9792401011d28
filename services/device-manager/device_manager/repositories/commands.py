"""Commands: insert (single, bulk by device filter), mark sent, read and list."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg2.extras import execute_values

from device_manager.repositories.base import Filters, fetch_page
from device_manager.repositories.devices import device_filters
from device_manager.service.pagination import Page, PageRequest
from iothub.db import Database

COLUMNS = ("c.id AS cmd_id, d.device_id, c.device_id AS device_uuid, c.cmd, c.params, c.status, c.detail, "
           "c.bulk_id, c.rollout_id, c.created_by, c.created_at, c.sent_at, c.acked_at, c.expires_at")
FROM = "commands c JOIN devices d ON d.id = c.device_id"
SORT = {"created_at": "c.created_at", "status": "c.status", "cmd": "c.cmd", "expires_at": "c.expires_at",
        "acked_at": "c.acked_at"}


class CommandRepository:
    """Rows of the commands table, always shown with the device's MQTT identity."""

    def __init__(self, db: Database):
        self.db = db

    def insert(self, cur, rows: Sequence[dict[str, Any]]) -> None:
        """Insert command rows inside the caller's transaction (cmd_id, device_uuid, cmd, params, ...)."""
        execute_values(cur, "INSERT INTO commands (id, device_id, cmd, params, bulk_id, rollout_id, created_by, "
                            "expires_at, config_version) VALUES %s",
                       [(r["cmd_id"], r["device_uuid"], r["cmd"], json.dumps(r["params"]), r.get("bulk_id"),
                         r.get("rollout_id"), r.get("created_by"), r["expires_at"], r.get("config_version"))
                        for r in rows], page_size=1000)

    def create(self, row: dict[str, Any]) -> None:
        """Insert one command in its own transaction."""
        with self.db.transaction() as cur:
            self.insert(cur, [row])

    def create_for_devices(self, filters: dict[str, Any], cmd: str, params: dict[str, Any], *, bulk_id: str,
                           created_by: str, expires_at: datetime) -> list[tuple[str, str]]:
        """One command per device matching the filters; returns (cmd_id, MQTT device_id) pairs."""
        f = device_filters(filters)
        if "status" not in filters:
            f.add("d.status <> 'decommissioned'")
        query = (f"WITH target AS (SELECT d.id, d.device_id FROM devices d JOIN device_types t "  # noqa: S608
                 f"ON t.id = d.device_type_id{f.where()}), "
                 "ins AS (INSERT INTO commands (id, device_id, cmd, params, bulk_id, created_by, expires_at) "
                 "SELECT gen_random_uuid(), target.id, %s, %s, %s, %s, %s FROM target RETURNING id, device_id) "
                 "SELECT ins.id::text, target.device_id FROM ins JOIN target ON target.id = ins.device_id")
        with self.db.transaction() as cur:
            cur.execute(query, [*f.params, cmd, json.dumps(params), bulk_id, created_by, expires_at])
            return [(r[0], r[1]) for r in cur.fetchall()]

    def mark_sent(self, cmd_ids: Sequence[str]) -> int:
        """pending -> sent; an ack the collector already applied is never overwritten."""
        with self.db.transaction() as cur:
            cur.execute("UPDATE commands SET status = 'sent', sent_at = now() "
                        "WHERE id = ANY(%s::uuid[]) AND status = 'pending'", (list(cmd_ids),))
            return cur.rowcount

    def get(self, cmd_id) -> dict[str, Any] | None:
        """One command."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"SELECT {COLUMNS} FROM {FROM} WHERE c.id = %s", (cmd_id,))  # noqa: S608
            return cur.fetchone()

    def list(self, req: PageRequest) -> Page:
        """A filtered page (device_uuid, device_id, status, cmd, bulk_id, rollout_id)."""
        f = Filters()
        for key, column in (("device_uuid", "c.device_id"), ("device_id", "d.device_id"), ("status", "c.status"),
                            ("cmd", "c.cmd"), ("bulk_id", "c.bulk_id"), ("rollout_id", "c.rollout_id")):
            if key in req.filters:
                f.add(f"{column} = %s", req.filters[key])
        return fetch_page(self.db, COLUMNS, FROM, f, req, SORT, "c.id")

    def device_identity(self, device_uuid) -> str | None:
        """The MQTT device_id of a device row, None when it does not exist."""
        with self.db.transaction() as cur:
            cur.execute("SELECT device_id FROM devices WHERE id = %s", (device_uuid,))
            row = cur.fetchone()
            return row[0] if row else None
