"""What a run left behind: the simulator's ledger, and the series rows and events the platform stored for it."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg2

Key = tuple[str, int]  # (device_id, seq): a datagram's identity within one boot of the fleet


@dataclass(frozen=True)
class LedgerRow:
    """One published message as the simulator recorded it."""

    device_id: str
    epoch: int
    seq: int
    msg_type: str
    publish_ts: float  # unix seconds


def read_ledger(path: Path) -> list[LedgerRow]:
    """Parse the simulator's CSV ledger (device_id,epoch,seq,msg_type,publish_ts)."""
    rows = []
    with path.open() as fh:
        for rec in csv.DictReader(fh):
            ts = rec["publish_ts"]
            when = float(ts) if ts.replace(".", "", 1).isdigit() else datetime.fromisoformat(ts).timestamp()
            rows.append(LedgerRow(rec["device_id"], int(rec["epoch"]), int(rec["seq"]), rec["msg_type"], when))
    return rows


def _query(dsn: str, sql: str, params: tuple) -> list[tuple]:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def _like(prefix: str) -> str:
    # Fleets are named PREFIX-000123; the dash keeps ramp1 from matching ramp10's devices.
    return prefix.replace("_", r"\_") + "-%"


def stored_series(dsn: str, prefix: str) -> dict[Key, tuple[int, float]]:
    """(device_id, seq) -> (rows stored, first stored_at in unix seconds) for one fleet's telemetry."""
    rows = _query(dsn, "SELECT device_id, seq, count(*), extract(epoch FROM min(stored_at))::float8 "
                       "FROM telemetry WHERE device_id LIKE %s GROUP BY device_id, seq", (_like(prefix),))
    return {(d, s): (n, at) for d, s, n, at in rows}


def stored_count(dsn: str, prefix: str) -> int:
    """Series rows stored so far for one fleet (for watching the drain)."""
    return _query(dsn, "SELECT count(*) FROM telemetry WHERE device_id LIKE %s", (_like(prefix),))[0][0]


def stored_events(dsn: str, prefix: str) -> list[tuple[str, float, float, float | None]]:
    """Threshold events of one fleet: (device_id, first sample ts, created_at, first notification attempt)."""
    return _query(dsn, """
        SELECT e.device_id, extract(epoch FROM e.first_ts)::float8, extract(epoch FROM e.created_at)::float8,
               extract(epoch FROM min(a.started_at))::float8
        FROM events e
        LEFT JOIN notifications n ON n.event_id = e.id
        LEFT JOIN notification_attempts a ON a.notification_id = n.id
        WHERE e.rule_kind = 'threshold' AND e.device_id LIKE %s
        GROUP BY e.id""", (_like(prefix),))
