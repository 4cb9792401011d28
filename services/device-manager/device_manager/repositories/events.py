"""Events: listed with filters, acknowledged and resolved by people (open -> acknowledged -> resolved)."""

from __future__ import annotations

from typing import Any

from device_manager.repositories.base import Filters, fetch_page
from device_manager.service.events import Transition
from device_manager.service.pagination import Page, PageRequest
from iothub.db import Database

COLUMNS = ("id, rule_id, rule_name, rule_kind, device_id, device_type, severity, message, status, first_ts, last_ts, "
           "count, trigger_values, last_value, acknowledged_by, acknowledged_at, resolved_by, resolved_at, "
           "resolution_comment, created_at, updated_at")
SORT = {"last_ts": "last_ts", "first_ts": "first_ts", "created_at": "created_at", "count": "count",
        "severity": "array_position(ARRAY['info','warning','critical'], severity)", "device_id": "device_id"}
_EXACT = ("status", "severity", "device_id", "rule_id", "rule_kind", "device_type")
# Which state each action leads to, and the states it may start from.
TRANSITIONS = {"acknowledge": ("acknowledged", ("open",)), "resolve": ("resolved", ("open", "acknowledged"))}


class EventRepository:
    """Reads and human state changes on the events table (the rule engine owns everything else)."""

    def __init__(self, db: Database):
        self.db = db

    def list(self, req: PageRequest) -> Page:
        """A filtered, sorted page of events; since/until bound last_ts."""
        f = Filters().exact(req.filters, _EXACT).between(req.filters, "last_ts")
        return fetch_page(self.db, COLUMNS, "events", f, req, SORT, "id")

    def get(self, event_id: str) -> dict[str, Any] | None:
        """One event by id."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"SELECT {COLUMNS} FROM events WHERE id = %s", (event_id,))  # noqa: S608
            return cur.fetchone()

    def acknowledge(self, event_id: str, who: str) -> Transition:
        """open -> acknowledged, recording who and when."""
        sql = ("UPDATE events SET status = 'acknowledged', acknowledged_by = %s, acknowledged_at = now(), "  # noqa: S608
               f"updated_at = now() WHERE id = %s AND status = 'open' RETURNING {COLUMNS}")
        return self._transition(sql, (who, event_id), event_id)

    def resolve(self, event_id: str, who: str, comment: str | None) -> Transition:
        """open or acknowledged -> resolved, recording who, when and the comment."""
        sql = ("UPDATE events SET status = 'resolved', resolved_by = %s, resolved_at = now(), "  # noqa: S608
               "resolution_comment = %s, updated_at = now() "
               f"WHERE id = %s AND status IN ('open', 'acknowledged') RETURNING {COLUMNS}")
        return self._transition(sql, (who, comment, event_id), event_id)

    def _transition(self, sql: str, params: tuple, event_id: str) -> Transition:
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
            if row is not None:
                return Transition(row, True)
            cur.execute("SELECT status FROM events WHERE id = %s", (event_id,))
            current = cur.fetchone()
            return Transition(None, current is not None, current["status"] if current else None)
