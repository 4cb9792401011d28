"""ArchiveIndex on PostgreSQL: archive_objects (one row per object) and archive_messages (msg_id -> object)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psycopg2.extras

from collector.writers.archive import ArchiveObject, IndexConflict
from iothub.db import Database

log = logging.getLogger(__name__)

ARCHIVED = "SELECT msg_id::text FROM archive_messages WHERE msg_id = ANY(%s::uuid[])"
OBJECTS = """
INSERT INTO archive_objects (key, window_start, msg_type, lines, bytes) VALUES %s
ON CONFLICT (key) DO UPDATE SET lines = EXCLUDED.lines, bytes = EXCLUDED.bytes RETURNING key, id
"""
MESSAGES = """
INSERT INTO archive_messages (msg_id, device_id, ts, seq, object_id) VALUES %s ON CONFLICT (msg_id) DO NOTHING
RETURNING msg_id
"""
# Object ids grow with time, so "every object up to the newest expired one" is a cheap range on both tables.
EXPIRED = "SELECT max(id) FROM archive_objects WHERE created_at < now() - make_interval(days => %s)"
PRUNE_MESSAGES = "DELETE FROM archive_messages WHERE object_id <= %s"
PRUNE_OBJECTS = "DELETE FROM archive_objects WHERE id <= %s"


class _Transaction:
    """IndexTransaction on one open cursor."""

    def __init__(self, cur, archived: set[str]):
        self._cur = cur
        self.archived = archived

    def record(self, objects: Sequence[ArchiveObject]) -> None:
        """Insert the objects, then their messages; a message inserted by a concurrent writer is a conflict."""
        if not objects:
            return
        rows = [(o.key, o.window_start, o.msg_type, len(o.lines), len(o.data)) for o in objects]
        ids = dict(psycopg2.extras.execute_values(self._cur, OBJECTS, rows, fetch=True, page_size=len(rows)))
        # Sorted by msg_id, so two writers holding overlapping redeliveries lock rows in the same order.
        messages = sorted((line.msg_id, line.device_id, line.ts, line.seq, ids[o.key])
                          for o in objects for line in o.lines)
        inserted = psycopg2.extras.execute_values(self._cur, MESSAGES, messages, fetch=True,
                                                  page_size=len(messages))
        if len(inserted) != len(messages):
            raise IndexConflict(f"{len(messages) - len(inserted)} messages indexed by another writer")


class PostgresArchiveIndex:
    """Holds one transaction per batch across the object PUTs; prunes rows older than retention_days (0: never)."""

    def __init__(self, db: Database, *, retention_days: int = 0, prune_every: float = 3600.0):
        self._db = db
        self._retention_days = retention_days
        self._prune_every = prune_every
        self._pruned_at: float | None = None  # None: prune on the first batch, whatever the monotonic clock says

    @contextmanager
    def begin(self, msg_ids: Sequence[str]) -> Iterator[_Transaction]:
        """A transaction that knows which of msg_ids some object already holds; commits on a clean exit."""
        with self._db.transaction() as cur:
            cur.execute(ARCHIVED, (list(msg_ids),))
            yield _Transaction(cur, {row[0] for row in cur.fetchall()})
        self._prune()

    def _prune(self) -> None:
        if self._retention_days <= 0 or (self._pruned_at is not None
                                         and time.monotonic() - self._pruned_at < self._prune_every):
            return
        self._pruned_at = time.monotonic()
        with self._db.transaction() as cur:
            cur.execute(EXPIRED, (self._retention_days,))
            newest = cur.fetchone()[0]
            if newest is None:
                return
            cur.execute(PRUNE_MESSAGES, (newest,))
            messages = cur.rowcount
            cur.execute(PRUNE_OBJECTS, (newest,))
            log.info("archive index pruned", extra={"objects": cur.rowcount, "messages": messages})
