"""Rules: threshold rules are created and deleted by operators; built-in kinds are only tuned."""

from __future__ import annotations

from typing import Any

from device_manager.repositories.base import Filters, fetch_page
from device_manager.service.pagination import Page, PageRequest
from device_manager.service.rules import BUILTIN_FIELDS, THRESHOLD_FIELDS
from iothub.db import Database

COLUMNS = ("id, name, description, kind, (kind <> 'threshold') AS builtin, scope, device_id, device_type, metric, "
           "operator, threshold, severity, message_template, for_seconds, clear_hysteresis, renotify_seconds, "
           "cooldown_seconds, params, enabled, created_by, created_at, updated_at")
SORT = {"name": "lower(name)", "kind": "kind", "created_at": "created_at", "updated_at": "updated_at",
        "severity": "array_position(ARRAY['info','warning','critical'], severity)"}
_EXACT = ("kind", "scope", "severity", "enabled", "metric", "device_id", "device_type")


def like_pattern(text: str) -> str:
    """An ILIKE pattern matching text anywhere, with its wildcards escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _json(value: Any) -> Any:
    from psycopg2.extras import Json

    return Json(value) if isinstance(value, dict | list) else value


class RuleRepository:
    """CRUD on the rules table."""

    def __init__(self, db: Database):
        self.db = db

    def list(self, req: PageRequest) -> Page:
        """A filtered, sorted page of rules."""
        f = Filters().exact(req.filters, _EXACT)
        if "q" in req.filters:
            f.add("(name ILIKE %s OR description ILIKE %s)", like_pattern(req.filters["q"]),
                  like_pattern(req.filters["q"]))
        if "builtin" in req.filters:
            f.add("(kind <> 'threshold') = %s", req.filters["builtin"])
        return fetch_page(self.db, COLUMNS, "rules", f, req, SORT, "id")

    def get(self, rule_id: str) -> dict[str, Any] | None:
        """One rule by id."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"SELECT {COLUMNS} FROM rules WHERE id = %s", (rule_id,))  # noqa: S608
            return cur.fetchone()

    def create(self, values: dict[str, Any], created_by: str | None) -> dict[str, Any]:
        """Insert a threshold rule; constraint violations surface as IntegrityError (422)."""
        data = {k: v for k, v in values.items() if k in THRESHOLD_FIELDS}
        data.update(kind="threshold", created_by=created_by)
        cols = ", ".join(data)
        marks = ", ".join(["%s"] * len(data))
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"INSERT INTO rules ({cols}) VALUES ({marks}) RETURNING {COLUMNS}",  # noqa: S608
                        [_json(v) for v in data.values()])
            return cur.fetchone()

    def update(self, rule_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Apply changes allowed for the rule's kind (others are ignored); None when absent."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute("SELECT kind FROM rules WHERE id = %s FOR UPDATE", (rule_id,))
            row = cur.fetchone()
            if row is None:
                return None
            allowed = THRESHOLD_FIELDS if row["kind"] == "threshold" else BUILTIN_FIELDS
            data = {k: v for k, v in changes.items() if k in allowed}
            sets = "".join(f"{k} = %s, " for k in data)
            cur.execute(f"UPDATE rules SET {sets}updated_at = now() WHERE id = %s RETURNING {COLUMNS}",  # noqa: S608
                        [*(_json(v) for v in data.values()), rule_id])
            return cur.fetchone()

    def delete(self, rule_id: str) -> str | None:
        """Delete a threshold rule; returns the kind found (a built-in kind is not deleted), None when absent."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM rules WHERE id = %s AND kind = 'threshold' RETURNING kind", (rule_id,))
            if cur.fetchone():
                return "threshold"
            cur.execute("SELECT kind FROM rules WHERE id = %s", (rule_id,))
            row = cur.fetchone()
            return row[0] if row else None
