"""Notification subscriptions; the webhook secret is written, never read back."""

from __future__ import annotations

from typing import Any

from device_manager.repositories.base import Filters, fetch_page
from device_manager.repositories.rules import like_pattern
from device_manager.service.pagination import Page, PageRequest
from iothub.db import Database

FIELDS = ("name", "channel", "target", "secret", "min_severity", "device_type", "device_id", "rule_id", "enabled")
COLUMNS = ("id, name, channel, target, (secret IS NOT NULL) AS has_secret, min_severity, device_type, device_id, "
           "rule_id, enabled, created_by, created_at, updated_at")
SORT = {"name": "lower(name)", "channel": "channel", "created_at": "created_at", "updated_at": "updated_at",
        "min_severity": "array_position(ARRAY['info','warning','critical'], min_severity)"}
_EXACT = ("channel", "min_severity", "device_type", "device_id", "rule_id", "enabled")


class SubscriptionRepository:
    """CRUD on subscriptions."""

    def __init__(self, db: Database):
        self.db = db

    def list(self, req: PageRequest) -> Page:
        """A filtered, sorted page of subscriptions."""
        f = Filters().exact(req.filters, _EXACT)
        if "q" in req.filters:
            f.add("(name ILIKE %s OR target ILIKE %s)", like_pattern(req.filters["q"]), like_pattern(req.filters["q"]))
        return fetch_page(self.db, COLUMNS, "subscriptions", f, req, SORT, "id")

    def get(self, sub_id: str) -> dict[str, Any] | None:
        """One subscription by id (without its secret)."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"SELECT {COLUMNS} FROM subscriptions WHERE id = %s", (sub_id,))  # noqa: S608
            return cur.fetchone()

    def create(self, values: dict[str, Any], created_by: str | None) -> dict[str, Any]:
        """Insert; an unknown rule_id raises ForeignKeyViolation (422)."""
        data = {k: v for k, v in values.items() if k in FIELDS}
        data["created_by"] = created_by
        cols = ", ".join(data)
        marks = ", ".join(["%s"] * len(data))
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"INSERT INTO subscriptions ({cols}) VALUES ({marks}) RETURNING {COLUMNS}",  # noqa: S608
                        list(data.values()))
            return cur.fetchone()

    def update(self, sub_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Apply whitelisted changes; None when absent."""
        data = {k: v for k, v in changes.items() if k in FIELDS}
        sets = "".join(f"{k} = %s, " for k in data)
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"UPDATE subscriptions SET {sets}updated_at = now() WHERE id = %s "  # noqa: S608
                        f"RETURNING {COLUMNS}", [*data.values(), sub_id])
            return cur.fetchone()

    def delete(self, sub_id: str) -> bool:
        """Delete; False when there was none (its notifications keep their history)."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM subscriptions WHERE id = %s", (sub_id,))
            return cur.rowcount == 1
