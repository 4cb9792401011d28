"""Notifications and their delivery attempts (written by the notifier, read here)."""

from __future__ import annotations

from typing import Any

from device_manager.repositories.base import Filters, fetch_page
from device_manager.service.pagination import Page, PageRequest
from iothub.db import Database

COLUMNS = ("id, change_id, event_id, subscription_id, channel, target, status, attempts, last_error, "
           "next_attempt_at, sent_at, created_at, updated_at")
ATTEMPT_COLUMNS = "attempt, status, response_code, error, started_at, finished_at"
SORT = {"created_at": "created_at", "updated_at": "updated_at", "attempts": "attempts", "status": "status"}
_EXACT = ("event_id", "subscription_id", "status", "channel")


class NotificationRepository:
    """Read-only access to notifications."""

    def __init__(self, db: Database):
        self.db = db

    def list(self, req: PageRequest) -> Page:
        """A filtered, sorted page of notifications."""
        f = Filters().exact(req.filters, _EXACT).between(req.filters, "created_at")
        return fetch_page(self.db, COLUMNS, "notifications", f, req, SORT, "id")

    def get(self, notification_id: str) -> dict[str, Any] | None:
        """One notification with its attempts, oldest first."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"SELECT {COLUMNS} FROM notifications WHERE id = %s", (notification_id,))  # noqa: S608
            row = cur.fetchone()
            if row is None:
                return None
            cur.execute(f"SELECT {ATTEMPT_COLUMNS} FROM notification_attempts WHERE notification_id = %s "  # noqa: S608
                        "ORDER BY attempt", (notification_id,))
            return {**row, "attempt_log": [dict(r) for r in cur.fetchall()]}
