"""Dead-letter store on the PostgreSQL dead_letters table, idempotent on message_id."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import psycopg2
import psycopg2.extras

from collector.writers.dead_letters import DeadLetter
from iothub.db import Database

# A redelivery of a parked letter changes nothing; a message that fails again after an operator replayed (or
# discarded) it is parked again with its new reason instead of vanishing behind the unique message_id.
INSERT = """
INSERT INTO dead_letters AS dl (message_id, source, reason, detail, exchange, routing_key, headers, body)
VALUES %s
ON CONFLICT (message_id) DO UPDATE SET source = EXCLUDED.source, reason = EXCLUDED.reason, detail = EXCLUDED.detail,
  exchange = EXCLUDED.exchange, routing_key = EXCLUDED.routing_key, headers = EXCLUDED.headers, body = EXCLUDED.body,
  status = 'parked', received_at = now(), handled_by = NULL, handled_at = NULL
WHERE dl.status <> 'parked'
RETURNING 1
"""
ROW = "(%s, %s, %s, %s, %s, %s, %s::jsonb, %s)"


class PostgresDeadLetterStore:
    """Inserts parked messages; a redelivered letter hits the unique message_id and is ignored while parked."""

    def __init__(self, db: Database):
        self._db = db

    def insert(self, letters: Sequence[DeadLetter]) -> int:
        """Insert the letters; returns how many were new or parked again."""
        if not letters:
            return 0
        rows = [(d.message_id, d.source, d.reason, d.detail, d.exchange, d.routing_key,
                 orjson.dumps(d.headers).decode(), psycopg2.Binary(d.body)) for d in letters]
        with self._db.transaction() as cur:
            result = psycopg2.extras.execute_values(cur, INSERT, rows, template=ROW, fetch=True)
        return len(result)
