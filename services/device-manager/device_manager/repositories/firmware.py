"""firmware_images: metadata of uploaded images (the bytes are in the object store)."""

from __future__ import annotations

from typing import Any

from device_manager.repositories.base import Filters, fetch_page
from device_manager.service.pagination import Page, PageRequest
from iothub.db import Database

COLUMNS = "f.id, f.fw_version, f.filename, f.object_key, f.sha256, f.size_bytes, f.uploaded_by, f.created_at"
SORT = {"created_at": "f.created_at", "fw_version": "f.fw_version"}


class FirmwareRepository:
    """FirmwareRecords over PostgreSQL."""

    def __init__(self, db: Database):
        self.db = db

    def create(self, row: dict[str, Any]) -> dict[str, Any]:
        """Insert one image."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"INSERT INTO firmware_images AS f (id, fw_version, filename, object_key, sha256, size_bytes, "  # noqa: S608
                        f"uploaded_by) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {COLUMNS}",
                        (str(row["id"]), row["fw_version"], row["filename"], row["object_key"], row["sha256"],
                         row["size_bytes"], row["uploaded_by"]))
            return dict(cur.fetchone())

    def get(self, firmware_id) -> dict[str, Any] | None:
        """One image."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"SELECT {COLUMNS} FROM firmware_images f WHERE f.id = %s", (str(firmware_id),))  # noqa: S608
            row = cur.fetchone()
            return dict(row) if row else None

    def list(self, req: PageRequest) -> Page:
        """Filter fw_version."""
        f = Filters()
        if "fw_version" in req.filters:
            f.add("f.fw_version = %s", req.filters["fw_version"])
        return fetch_page(self.db, COLUMNS, "firmware_images f", f, req, SORT, "f.id")
