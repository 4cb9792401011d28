"""Fleet and pipeline figures for the dashboard: counts by state and ingest/reject rates."""

from __future__ import annotations

from typing import Any

from iothub.db import Database

DEVICE_STATUSES = ("active", "inactive", "maintenance", "decommissioned")
CONNECTION_STATUSES = ("online", "offline", "unknown")
SEVERITIES = ("info", "warning", "critical")
NOTIFICATION_STATUSES = ("pending", "sent", "failed")
DEAD_LETTER_STATUSES = ("parked", "replayed", "discarded")


def _counts(cur, sql: str, keys: tuple[str, ...], params: tuple = ()) -> dict[str, int]:
    cur.execute(sql, params)
    counts = dict.fromkeys(keys, 0)
    counts.update({k: int(n) for k, n in cur.fetchall()})
    return counts


class StatsRepository:
    """Aggregate queries, all in one read-only transaction."""

    def __init__(self, db: Database):
        self.db = db

    def summary(self, window_s: int = 300) -> dict[str, Any]:
        """Devices by status and connection, unresolved events by severity and status, rates over the window."""
        with self.db.transaction() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            devices = {
                "total": _scalar(cur, "SELECT count(*) FROM devices"),
                "by_status": _counts(cur, "SELECT status, count(*) FROM devices GROUP BY 1", DEVICE_STATUSES),
                "by_connection": _counts(cur, "SELECT connection_status, count(*) FROM devices GROUP BY 1",
                                         CONNECTION_STATUSES),
            }
            events = {
                "open_by_severity": _counts(cur, "SELECT severity, count(*) FROM events WHERE status <> 'resolved' "
                                                 "GROUP BY 1", SEVERITIES),
                "by_status": _counts(cur, "SELECT status, count(*) FROM events WHERE status <> 'resolved' GROUP BY 1",
                                     ("open", "acknowledged")),
            }
            # Partition pruning on the device ts (a day back covers late and buffered data), rate on receipt time.
            cur.execute("SELECT count(*), COALESCE(sum(jsonb_array_length(measurements)), 0) FROM telemetry "
                        "WHERE ts >= now() - interval '1 day' AND received_at >= now() - make_interval(secs => %s)",
                        (window_s,))
            datagrams, measurements = cur.fetchone()
            rejected = _scalar(cur, "SELECT count(*) FROM dead_letters WHERE received_at >= now() - "
                                    "make_interval(secs => %s)", (window_s,))
            cur.execute("SELECT reason, count(*) FROM dead_letters WHERE received_at >= now() - "
                        "make_interval(secs => %s) GROUP BY 1 ORDER BY 2 DESC, 1", (window_s,))
            reject_reasons = {reason: int(n) for reason, n in cur.fetchall()}
            notifications = _counts(cur, "SELECT status, count(*) FROM notifications GROUP BY 1",
                                    NOTIFICATION_STATUSES)
            dead_letters = _counts(cur, "SELECT status, count(*) FROM dead_letters GROUP BY 1", DEAD_LETTER_STATUSES)
        return {
            "devices": devices,
            "events": events,
            "ingest": {
                "window_s": window_s,
                "datagrams": int(datagrams),
                "measurements": int(measurements),
                "rejected": rejected,
                "datagrams_per_s": round(datagrams / window_s, 3),
                "measurements_per_s": round(measurements / window_s, 3),
                "rejected_per_s": round(rejected / window_s, 3),
                "reject_reasons": reject_reasons,
            },
            "notifications": notifications,
            "dead_letters": dead_letters,
        }


def _scalar(cur, sql: str, params: tuple = ()) -> int:
    cur.execute(sql, params)
    return int(cur.fetchone()[0])
