"""PostgreSQL Repository: subscriptions, planned notifications, leases on due attempts and attempt records."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from psycopg2.extras import Json, execute_values

from iothub.db import Database
from notifier import events
from notifier.policy import Subscription
from notifier.service import FAILED, PENDING, SENT, Accepted, Claim, Decision

INTERRUPTED = "interrupted: the notifier stopped during this attempt"
_CANDIDATES_PER_SLOT = 4  # look past a few rows of busy targets without scanning the whole backlog
# Leases and attempt results may skip the WAL flush: a PostgreSQL crash can only lose the last few of them, which
# re-sends those notifications (at least once, as after any crash) and never loses one. store() stays synchronous
# because the broker message is acked after it.
_ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"


class PostgresRepository:
    """Repository on the shared schema (0001 core + 0300 notifier)."""

    def __init__(self, db: Database):
        self._db = db

    def subscriptions(self) -> list[Subscription]:
        """Every enabled subscription."""
        with self._db.transaction() as cur:
            cur.execute("SELECT id::text, channel, target, min_severity, device_type, device_id, rule_id::text, enabled"
                        " FROM subscriptions WHERE enabled")
            return [Subscription(*row) for row in cur.fetchall()]

    def store(self, planned: Sequence[tuple[events.EventChange, Sequence[Subscription]]]) -> Accepted:
        """Insert new changes and their pending notifications in one transaction; known change ids are skipped."""
        unique = {change.change_id: (change, subs) for change, subs in planned}
        with self._db.transaction() as cur:
            stored = execute_values(cur, """
                INSERT INTO notification_changes (change_id, event_id, change, routing_key, payload, occurred_at)
                SELECT v.change_id::uuid, v.event_id::uuid, v.change, v.routing_key, v.payload::jsonb,
                       COALESCE(v.occurred_at::timestamptz, now())
                FROM (VALUES %s) AS v(change_id, event_id, change, routing_key, payload, occurred_at)
                ON CONFLICT (change_id) DO NOTHING RETURNING change_id::text""",
                [(c.change_id, c.event.id, c.change, c.routing_key, Json(c.payload), c.occurred_at or c.event.last_ts)
                 for c, _ in unique.values()], fetch=True)
            new = {row[0] for row in stored}
            rows = [(change_id, unique[change_id][0].event.id, s.id, s.channel, s.target, s.target_key)
                    for change_id in new for s in unique[change_id][1]]
            created = []
            if rows:
                created = execute_values(cur, """
                    INSERT INTO notifications (change_id, event_id, subscription_id, channel, target, target_key)
                    SELECT v.change_id::uuid, v.event_id::uuid, v.subscription_id::uuid, v.channel, v.target,
                           v.target_key
                    FROM (VALUES %s) AS v(change_id, event_id, subscription_id, channel, target, target_key)
                    ON CONFLICT (change_id, subscription_id) DO NOTHING RETURNING id""", rows, fetch=True)
        return Accepted(changes=len(new), duplicates=len(planned) - len(new), notifications=len(created))

    def claim_due(self, limit: int, exclude: Sequence[str], lease_seconds: float,
                  choose: Callable[[list[tuple[str, str]]], list[str]]) -> list[Claim]:
        """Lock due rows (SKIP LOCKED), lease the chosen ones and open their next attempt."""
        with self._db.transaction() as cur:
            cur.execute(_ASYNC_COMMIT)
            cur.execute("""
                SELECT id::text, COALESCE(target_key, target) FROM notifications
                WHERE status = 'pending' AND next_attempt_at <= now() AND NOT (COALESCE(target_key, target) = ANY(%s))
                ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED""",
                (list(exclude), limit * _CANDIDATES_PER_SLOT))
            chosen = choose([tuple(row) for row in cur.fetchall()])
            if not chosen:
                return []
            # An attempt still open here was cut short by a crash: its lease expired, so close it.
            cur.execute("""UPDATE notification_attempts SET status = 'failed', error = %s, finished_at = now()
                           WHERE notification_id = ANY(%s::uuid[]) AND status = 'pending'""", (INTERRUPTED, chosen))
            cur.execute("""
                WITH leased AS (
                    UPDATE notifications SET attempts = attempts + 1, updated_at = now(),
                           next_attempt_at = now() + make_interval(secs => %s)
                    WHERE id = ANY(%s::uuid[])
                    RETURNING id, attempts, channel, target, COALESCE(target_key, target) AS target_key, change_id,
                              subscription_id)
                SELECT l.id::text, l.attempts, l.channel, l.target, l.target_key, s.secret, s.id IS NOT NULL,
                       c.payload, c.routing_key, c.occurred_at
                FROM leased l
                LEFT JOIN notification_changes c ON c.change_id = l.change_id
                LEFT JOIN subscriptions s ON s.id = l.subscription_id""", (lease_seconds, chosen))
            claims, orphans = [], []
            for nid, attempt, channel, target, key, secret, exists, payload, routing_key, occurred_at in cur.fetchall():
                try:
                    if payload is None:  # a row some other writer created: nothing to deliver
                        raise events.InvalidChange("missing", "no stored event change")
                    change = events.decode(json.dumps(payload).encode(), routing_key=routing_key)
                except events.InvalidChange:
                    orphans.append(nid)
                    continue
                claims.append(Claim(nid, attempt, channel, target, key, secret, exists, change, occurred_at))
            if orphans:
                cur.execute("""UPDATE notifications SET status = 'failed', updated_at = now(),
                               last_error = 'no deliverable event change stored' WHERE id = ANY(%s::uuid[])""",
                            (orphans,))
            if claims:
                execute_values(cur, "INSERT INTO notification_attempts (notification_id, attempt, status) VALUES %s",
                               [(c.notification_id, c.attempt, PENDING) for c in claims], template="(%s::uuid, %s, %s)")
            return claims

    def record(self, claim: Claim, decision: Decision) -> None:
        """Close the attempt, then settle the notification unless a newer attempt owns it."""
        outcome = decision.outcome
        with self._db.transaction() as cur:
            cur.execute(_ASYNC_COMMIT)
            cur.execute("""UPDATE notification_attempts SET status = %s, response_code = %s, error = %s,
                           finished_at = now() WHERE notification_id = %s AND attempt = %s""",
                        (SENT if outcome.ok else FAILED, outcome.response_code, outcome.error,
                         claim.notification_id, claim.attempt))
            if decision.status == SENT:
                cur.execute("""UPDATE notifications SET status = 'sent', sent_at = now(), last_error = NULL,
                               updated_at = now() WHERE id = %s AND status = 'pending'""", (claim.notification_id,))
            elif decision.status == FAILED:
                cur.execute("""UPDATE notifications SET status = 'failed', last_error = %s, updated_at = now()
                               WHERE id = %s AND status = 'pending' AND attempts = %s""",
                            (outcome.error, claim.notification_id, claim.attempt))
            else:
                cur.execute("""UPDATE notifications SET last_error = %s, updated_at = now(),
                               next_attempt_at = now() + make_interval(secs => %s)
                               WHERE id = %s AND status = 'pending' AND attempts = %s""",
                            (outcome.error, decision.retry_in or 0.0, claim.notification_id, claim.attempt))

    def pending_count(self) -> int:
        """Notifications not yet sent or failed."""
        with self._db.transaction() as cur:
            cur.execute("SELECT count(*) FROM notifications WHERE status = 'pending'")
            return cur.fetchone()[0]
