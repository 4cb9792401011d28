"""Leadership through a PostgreSQL session advisory lock: one replica evaluates, the others stand by."""

from __future__ import annotations

import contextlib
import logging

import psycopg2

log = logging.getLogger(__name__)

LOCK_KEY = 0x72756C65  # "rule"; below 2**32 so pg_locks shows it as classid 0, objid LOCK_KEY
FENCE_SQL = ("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = %s "
             "AND objsubid = 1 AND pid = %s AND granted)")


class Leadership:
    """Holds the lock on a dedicated connection; losing the connection loses the lock (and the leadership)."""

    def __init__(self, dsn: str, key: int = LOCK_KEY):
        self.dsn = dsn
        self.key = key
        self.pid: int | None = None  # backend pid holding the lock, for the per-transaction fence
        self._conn = None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg2.connect(self.dsn, application_name="rule-engine-leader", connect_timeout=5)
                self._conn.autocommit = True
            with self._conn.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s), pg_backend_pid()", (self.key,))
                acquired, pid = cur.fetchone()
        except psycopg2.Error as exc:
            log.warning("leadership: database unavailable", extra={"error": str(exc)})
            self.release()
            return False
        self.pid = pid if acquired else None
        return bool(acquired)

    def held(self) -> bool:
        """Whether the lock connection is still alive (and so the lock still ours)."""
        if self.pid is None or self._conn is None or self._conn.closed:
            return False
        try:
            with self._conn.cursor() as cur:
                cur.execute(FENCE_SQL, (self.key, self.pid))
                return bool(cur.fetchone()[0])
        except psycopg2.Error:
            self.release()
            return False

    def release(self) -> None:
        """Close the lock connection (the server drops the lock)."""
        self.pid = None
        if self._conn is not None:
            with contextlib.suppress(psycopg2.Error):
                self._conn.close()
            self._conn = None
