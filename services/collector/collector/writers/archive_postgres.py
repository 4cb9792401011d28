"""WindowLocks on PostgreSQL: row locks on archive_windows serialise collectors merging into the same object."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psycopg2.extras

from iothub.db import Database

log = logging.getLogger(__name__)

CLAIM = """
INSERT INTO archive_windows (key) SELECT k FROM unnest(%s::text[]) AS k ORDER BY k ON CONFLICT DO NOTHING
"""
LOCK = "SELECT key, digest FROM archive_windows WHERE key = ANY(%s) ORDER BY key FOR UPDATE"
SAVE = """
UPDATE archive_windows a SET digest = v.digest, updated_at = now() FROM (VALUES %s) AS v(key, digest)
WHERE a.key = v.key
"""
PRUNE = "DELETE FROM archive_windows WHERE updated_at < now() - make_interval(days => %s)"


class PostgresWindowLocks:
    """Locks held for the length of one batch's merge; a pruned row only costs a GET of the object."""

    def __init__(self, db: Database, *, keep_days: int = 2, prune_every: float = 3600.0):
        self._db = db
        self._keep_days = keep_days
        self._prune_every = prune_every
        self._pruned_at = 0.0

    @contextmanager
    def lock(self, keys: Sequence[str]) -> Iterator[dict[str, str | None]]:
        """Lock the windows' rows in key order (no deadlocks) and save changed digests on commit."""
        keys = sorted(set(keys))
        with self._db.transaction() as cur:
            cur.execute(CLAIM, (keys,))
            cur.execute(LOCK, (keys,))
            digests: dict[str, str | None] = dict(cur.fetchall())
            before = dict(digests)
            yield digests
            changed = [(key, value) for key, value in digests.items() if value != before.get(key)]
            if changed:
                psycopg2.extras.execute_values(cur, SAVE, changed)
        self._prune()

    def _prune(self) -> None:
        if time.monotonic() - self._pruned_at < self._prune_every:
            return
        self._pruned_at = time.monotonic()
        with self._db.transaction() as cur:
            cur.execute(PRUNE, (self._keep_days,))
            if cur.rowcount:
                log.info("archive window rows pruned", extra={"rows": cur.rowcount})
