"""Devices: CRUD, bulk create, filtered listing and the optional ingest token hash."""

from __future__ import annotations

import json
from typing import Any

from psycopg2.extras import execute_values

from device_manager.repositories.base import Filters, escape_like, order_by
from device_manager.repositories.counts import CountCache
from device_manager.service.errors import Invalid
from device_manager.service.pagination import Page, PageRequest
from iothub.db import Database

COLUMNS = ("d.id, d.device_id, d.name, d.serial_number, d.device_type_id, t.name AS device_type, d.location, "
           "d.status, d.metadata, d.connection_status, d.last_seen, d.fw_version, d.broker_connections, "
           "d.ingest_token_hash IS NOT NULL AS has_ingest_token, d.created_at, d.updated_at")
FROM = "devices d JOIN device_types t ON t.id = d.device_type_id"
SORT = {"name": "d.name", "device_id": "d.device_id", "serial_number": "d.serial_number", "status": "d.status",
        "connection_status": "d.connection_status", "last_seen": "d.last_seen", "created_at": "d.created_at",
        "updated_at": "d.updated_at"}
WRITABLE = ("device_id", "name", "serial_number", "device_type_id", "location", "status", "metadata")


def device_filters(filters: dict[str, Any]) -> Filters:
    """WHERE conditions shared by listing and bulk selection (device_type, status, connection, ids, q)."""
    f = Filters()
    if "device_type_id" in filters:
        f.add("d.device_type_id = %s", filters["device_type_id"])
    if "device_type" in filters:
        # A scalar subquery (the name is unique) instead of t.name: the condition then needs no join, so the list
        # can use devices_list_idx for the filter, the order and the count alike.
        f.add("d.device_type_id = (SELECT id FROM device_types WHERE name = %s)", filters["device_type"])
    if "status" in filters:
        f.add("d.status = %s", filters["status"])
    if "connection_status" in filters:
        f.add("d.connection_status = %s", filters["connection_status"])
    if "device_id" in filters:
        f.add("d.device_id = %s", filters["device_id"])
    if "ids" in filters:
        f.add("d.id = ANY(%s::uuid[])", [str(i) for i in filters["ids"]])
    if "q" in filters:
        like = f"%{escape_like(filters['q'])}%"
        f.add("(d.name ILIKE %s OR d.serial_number ILIKE %s)", like, like)
    return f


class DeviceRepository:
    """Devices joined with their type name."""

    def __init__(self, db: Database, counts: CountCache | None = None):
        self.db = db
        self.counts = counts

    def list(self, req: PageRequest) -> Page:
        """A filtered, sorted page: the count and the page's ids read devices alone (every filter and sort key is
        a devices column), then only the page's rows are joined with their type (a deferred join, so a deep
        OFFSET walks index entries, not 40,000 joined rows). Large totals may come from `counts`."""
        filters = device_filters(req.filters)
        where = filters.where()
        order = order_by(req.sort, SORT, "d.id")
        key = (where, repr(filters.params))
        total = self.counts.get(key) if self.counts is not None else None
        # Plain tuples zipped into dicts: psycopg2's RealDictCursor was ~15 % of a list request's CPU under load.
        with self.db.transaction() as cur:
            if total is None:
                cur.execute(f"SELECT count(*) FROM devices d{where}", filters.params)  # noqa: S608
                total = cur.fetchone()[0]
                if self.counts is not None:
                    self.counts.put(key, total)
            cur.execute(f"SELECT {COLUMNS} FROM (SELECT d.id FROM devices d{where}{order} LIMIT %s OFFSET %s) p "  # noqa: S608
                        "JOIN devices d ON d.id = p.id JOIN device_types t ON t.id = d.device_type_id"
                        f"{order}", [*filters.params, req.page_size, req.offset])
            names = [column.name for column in cur.description]
            return Page(items=[dict(zip(names, row, strict=True)) for row in cur.fetchall()], total=total)

    def get(self, row_id) -> dict[str, Any] | None:
        """One device by its UUID."""
        with self.db.read(dict_rows=True) as cur:
            cur.execute(f"SELECT {COLUMNS} FROM {FROM} WHERE d.id = %s", (row_id,))  # noqa: S608
            return cur.fetchone()

    def create_many(self, devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert devices in one transaction (all or none); returns them in input order."""
        with self.db.transaction(dict_rows=True) as cur:
            types = _resolve_types(cur, devices)
            rows = [_values({**d, "device_type_id": types.get(d.get("device_type"), d.get("device_type_id"))})
                    for d in devices]
            inserted = execute_values(
                cur, f"INSERT INTO devices ({', '.join(WRITABLE)}) VALUES %s RETURNING id",  # noqa: S608
                [tuple(r[c] for c in WRITABLE) for r in rows], page_size=1000, fetch=True)
            ids = [r["id"] for r in inserted]
            cur.execute(f"SELECT {COLUMNS} FROM {FROM} WHERE d.id = ANY(%s::uuid[])",  # noqa: S608
                        ([str(i) for i in ids],))
            by_id = {r["id"]: r for r in cur.fetchall()}
            return [by_id[i] for i in ids]

    def update(self, row_id, data: dict[str, Any]) -> dict[str, Any] | None:
        """Apply changes; None when the device does not exist."""
        with self.db.transaction(dict_rows=True) as cur:
            if "device_type" in data:
                data = {**data, "device_type_id": _resolve_types(cur, [data])[data["device_type"]]}
            values = {k: v for k, v in _values(data).items() if k in data and k != "device_id"}
            if values:
                sets = ", ".join(f"{k} = %s" for k in values)
                cur.execute(f"UPDATE devices SET {sets}, updated_at = now() WHERE id = %s",  # noqa: S608
                            [*values.values(), row_id])
            cur.execute(f"SELECT {COLUMNS} FROM {FROM} WHERE d.id = %s", (row_id,))  # noqa: S608
            return cur.fetchone()

    def delete(self, row_id) -> bool:
        """Delete a device (its config, commands and OTA states cascade)."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM devices WHERE id = %s", (row_id,))
            return cur.rowcount == 1

    def set_ingest_token_hash(self, row_id, token_hash: str | None) -> str | None:
        """Store (or clear) the ingest token hash; returns the device_id, None when no such device."""
        with self.db.transaction() as cur:
            cur.execute("UPDATE devices SET ingest_token_hash = %s, updated_at = now() WHERE id = %s "
                        "RETURNING device_id", (token_hash, row_id))
            row = cur.fetchone()
            return row[0] if row else None


def _values(data: dict[str, Any]) -> dict[str, Any]:
    values = {k: data.get(k) for k in WRITABLE}
    if values.get("metadata") is not None:
        values["metadata"] = json.dumps(values["metadata"])
    elif "metadata" not in data:
        values["metadata"] = "{}"
    if values.get("status") is None:
        values["status"] = "active"
    return values


def _resolve_types(cur, devices: list[dict[str, Any]]) -> dict[str, Any]:
    """Map the type names used in the input to ids; unknown names are a 422."""
    names = sorted({d["device_type"] for d in devices if d.get("device_type")})
    if not names:
        return {}
    cur.execute("SELECT name, id FROM device_types WHERE name = ANY(%s)", (names,))
    found = {r["name"]: r["id"] for r in cur.fetchall()}
    missing = [n for n in names if n not in found]
    if missing:
        raise Invalid("Unknown device type", {"device_type": missing})
    return found
