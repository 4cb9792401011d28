"""Dead letters parked from the broker: listed with a body preview, replayed or discarded by admins."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from device_manager.repositories.base import Filters, fetch_page
from device_manager.service.dead_letters import Handled
from device_manager.service.pagination import Page, PageRequest
from iothub.db import Database

PREVIEW_BYTES = 1024
COLUMNS = ("id, message_id, source, reason, detail, exchange, routing_key, headers, status, received_at, handled_by, "
           f"handled_at, length(body) AS body_size, substring(body FROM 1 FOR {PREVIEW_BYTES + 1}) AS body_head")
SORT = {"received_at": "received_at", "reason": "reason", "source": "source", "status": "status"}
_EXACT = ("status", "reason", "source", "exchange")


def preview(head: bytes | memoryview | None, size: int) -> dict[str, Any]:
    """The start of a body as text when it is UTF-8, else base64; `truncated` when more exists."""
    raw = bytes(head or b"")[:PREVIEW_BYTES]
    truncated = size > len(raw)
    try:
        text = raw.decode("utf-8")
        encoding = "text"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the preview bound is still text.
        if truncated and exc.start >= len(raw) - 3 and exc.reason == "unexpected end of data":
            text, encoding = raw[:exc.start].decode("utf-8"), "text"
        else:
            text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    return {"body_preview": text, "body_encoding": encoding, "body_size": size, "body_truncated": truncated}


def _shape(row: dict[str, Any]) -> dict[str, Any]:
    head = row.pop("body_head", None)
    return {**row, **preview(head, row["body_size"])}


class DeadLetterRepository:
    """The dead_letters table."""

    def __init__(self, db: Database):
        self.db = db

    def list(self, req: PageRequest) -> Page:
        """A filtered, sorted page with body previews."""
        f = Filters().exact(req.filters, _EXACT).between(req.filters, "received_at")
        page = fetch_page(self.db, COLUMNS, "dead_letters", f, req, SORT, "id")
        return Page(items=[_shape(r) for r in page.items], total=page.total)

    def get(self, dl_id: str) -> dict[str, Any] | None:
        """One dead letter with its body preview."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"SELECT {COLUMNS} FROM dead_letters WHERE id = %s", (dl_id,))  # noqa: S608
            row = cur.fetchone()
            return _shape(dict(row)) if row else None

    def replay(self, dl_id: str, who: str, publish: Callable[[dict[str, Any]], None]) -> Handled:
        """Lock a parked letter, publish it (publish raises on failure: it stays parked), mark it replayed."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute("SELECT id, message_id, status, exchange, routing_key, headers, body FROM dead_letters "
                        "WHERE id = %s FOR UPDATE", (dl_id,))
            row = cur.fetchone()
            if row is None:
                return Handled(None, False)
            if row["status"] != "parked":
                return Handled(None, True, row["status"])
            if not row["exchange"]:
                return Handled(None, True, row["status"], no_exchange=True)
            publish({**row, "body": bytes(row["body"])})
            return Handled(self._mark(cur, dl_id, "replayed", who), True)

    def discard(self, dl_id: str, who: str) -> Handled:
        """Mark a parked letter discarded."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute("SELECT status FROM dead_letters WHERE id = %s FOR UPDATE", (dl_id,))
            row = cur.fetchone()
            if row is None:
                return Handled(None, False)
            if row["status"] != "parked":
                return Handled(None, True, row["status"])
            return Handled(self._mark(cur, dl_id, "discarded", who), True)

    @staticmethod
    def _mark(cur, dl_id: str, status: str, who: str) -> dict[str, Any]:
        sql = f"UPDATE dead_letters SET status = %s, handled_by = %s, handled_at = now() WHERE id = %s RETURNING {COLUMNS}"  # noqa: S608, E501
        cur.execute(sql, (status, who, dl_id))
        return _shape(dict(cur.fetchone()))
