"""Device types."""

from __future__ import annotations

import json
from typing import Any

from device_manager.repositories.base import Filters, escape_like, fetch_page
from device_manager.service.pagination import Page, PageRequest
from iothub.db import Database

COLUMNS = ("t.id, t.name, t.description, t.metrics, t.send_interval_s, t.hello_interval_s, t.retention_days, "
           "t.created_at, t.updated_at, (SELECT count(*) FROM devices d WHERE d.device_type_id = t.id) AS device_count")
SORT = {"name": "t.name", "created_at": "t.created_at", "updated_at": "t.updated_at"}
WRITABLE = ("name", "description", "metrics", "send_interval_s", "hello_interval_s", "retention_days")


class DeviceTypeRepository:
    """CRUD on device_types; deleting a type still used by devices raises ForeignKeyViolation (409)."""

    def __init__(self, db: Database):
        self.db = db

    def list(self, req: PageRequest) -> Page:
        """A filtered, sorted page."""
        f = Filters()
        if "name" in req.filters:
            f.add("t.name = %s", req.filters["name"])
        if "q" in req.filters:
            f.add("t.name ILIKE %s", f"%{escape_like(req.filters['q'])}%")
        return fetch_page(self.db, COLUMNS, "device_types t", f, req, sort_columns=SORT, tiebreak="t.id")

    def get(self, type_id) -> dict[str, Any] | None:
        """One device type by id."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"SELECT {COLUMNS} FROM device_types t WHERE t.id = %s", (type_id,))  # noqa: S608
            return cur.fetchone()

    def create(self, data: dict[str, Any]) -> dict[str, Any]:
        """Insert a device type; a duplicate name raises UniqueViolation (409)."""
        values = _columns(data)
        cols = ", ".join(values)
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"INSERT INTO device_types ({cols}) VALUES ({', '.join(['%s'] * len(values))}) "  # noqa: S608
                        "RETURNING id", list(values.values()))
            new_id = cur.fetchone()["id"]
            cur.execute(f"SELECT {COLUMNS} FROM device_types t WHERE t.id = %s", (new_id,))  # noqa: S608
            return cur.fetchone()

    def update(self, type_id, data: dict[str, Any]) -> dict[str, Any] | None:
        """Apply changes; None when the type does not exist."""
        values = _columns(data)
        if not values:
            return self.get(type_id)
        sets = ", ".join(f"{k} = %s" for k in values)
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"UPDATE device_types SET {sets}, updated_at = now() WHERE id = %s",  # noqa: S608
                        [*values.values(), type_id])
            if cur.rowcount == 0:
                return None
            cur.execute(f"SELECT {COLUMNS} FROM device_types t WHERE t.id = %s", (type_id,))  # noqa: S608
            return cur.fetchone()

    def delete(self, type_id) -> bool:
        """Delete an unused type; False when there was none."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM device_types WHERE id = %s", (type_id,))
            return cur.rowcount == 1


def _columns(data: dict[str, Any]) -> dict[str, Any]:
    values = {k: data[k] for k in WRITABLE if k in data}
    if "metrics" in values:
        values["metrics"] = json.dumps(values["metrics"])
    return values
