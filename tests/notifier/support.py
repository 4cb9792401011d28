"""Notifier test helpers: event-change bodies, subscriptions and read-back of notifications."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def change(device_id: str, *, severity: str = "warning", change_kind: str = "opened", device_type: str = "pm_dc",
           rule_id: str | None = None, rule_name: str = "Voltage high", message: str | None = None) -> dict:
    """An event-change body as docs/events.md specifies it."""
    now = datetime.now(UTC).isoformat()
    return {
        "change_id": str(uuid.uuid4()), "change": change_kind, "occurred_at": now,
        "event": {
            "id": str(uuid.uuid4()), "rule_id": rule_id or str(uuid.uuid4()), "rule_name": rule_name,
            "rule_kind": "threshold", "device_id": device_id, "device_type": device_type, "severity": severity,
            "message": message or f"voltage_dc on {device_id} is 1612 V (threshold 1600)", "status": "open",
            "first_ts": now, "last_ts": now, "count": 1,
            "trigger_values": {"metric": "voltage_dc", "value": 1612.0, "unit": "V", "threshold": 1600.0},
            "last_value": 1612.0, "resolved_by": None, "resolved_at": None,
        },
    }


def subscribe(db, channel: str, target: str, *, secret: str | None = None, min_severity: str = "info",
              device_type: str | None = None, device_id: str | None = None, rule_id: str | None = None,
              enabled: bool = True) -> str:
    """Insert a subscription; returns its id."""
    with db.transaction() as cur:
        cur.execute("""INSERT INTO subscriptions (name, channel, target, secret, min_severity, device_type, device_id,
                                                  rule_id, enabled)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id::text""",
                    (f"test-{channel}", channel, target, secret, min_severity, device_type, device_id, rule_id,
                     enabled))
        return cur.fetchone()[0]


def notifications(db, subscription_id: str) -> list[dict]:
    """A subscription's notifications, oldest first."""
    with db.transaction(dict_rows=True) as cur:
        cur.execute("""SELECT id::text, change_id::text, event_id::text, status, attempts, last_error, sent_at,
                              updated_at FROM notifications WHERE subscription_id = %s ORDER BY created_at""",
                    (subscription_id,))
        return [dict(row) for row in cur.fetchall()]


def attempts(db, notification_id: str) -> list[dict]:
    """A notification's attempts in order."""
    with db.transaction(dict_rows=True) as cur:
        cur.execute("""SELECT attempt, status, response_code, error, started_at, finished_at
                       FROM notification_attempts WHERE notification_id = %s ORDER BY attempt""",
                    (notification_id,))
        return [dict(row) for row in cur.fetchall()]


def settled(db, subscription_id: str, count: int = 1) -> list[dict] | None:
    """The subscription's notifications once `count` exist and none is pending, else None (a wait_for probe)."""
    rows = notifications(db, subscription_id)
    if len(rows) >= count and all(row["status"] != "pending" for row in rows):
        return rows
    return None


def make_rule(db, name: str) -> str:
    """A rule row (subscriptions may filter on it); returns its id."""
    with db.transaction() as cur:
        cur.execute("INSERT INTO rules (name, kind, enabled) VALUES (%s, 'seq_gap', false) RETURNING id::text", (name,))
        return cur.fetchone()[0]
