"""PostgreSQL adapter of the sequence-state store (device_seq_tracking)."""

from __future__ import annotations

from array import array

import psycopg2.extras

from collector.sequencing.seq import SLOTS, DeviceSeq, new_prints
from iothub.db import Database

_UPSERT = """INSERT INTO device_seq_tracking (device_id, epoch, last_seq, window_bits, gaps_total, missing_total,
                 duplicates_total, reboots_total, boot_at, last_ts, prints, registration, prev_ts, updated_at)
             VALUES %s
             ON CONFLICT (device_id) DO UPDATE SET epoch = EXCLUDED.epoch, last_seq = EXCLUDED.last_seq,
                 window_bits = EXCLUDED.window_bits, gaps_total = EXCLUDED.gaps_total,
                 missing_total = EXCLUDED.missing_total, duplicates_total = EXCLUDED.duplicates_total,
                 reboots_total = EXCLUDED.reboots_total, boot_at = EXCLUDED.boot_at, last_ts = EXCLUDED.last_ts,
                 prints = EXCLUDED.prints, registration = EXCLUDED.registration, prev_ts = EXCLUDED.prev_ts,
                 updated_at = now()"""


def _signed64(bits: int) -> int:
    """The window bitmap as PostgreSQL's signed bigint."""
    return bits - 2**64 if bits >= 2**63 else bits


_SEQ_COLUMNS = """SELECT device_id, epoch, last_seq, window_bits, gaps_total, missing_total, duplicates_total,
                         reboots_total, boot_at, last_ts, prints, registration::text, prev_ts
                  FROM device_seq_tracking"""


def _prints(raw: bytes | memoryview | None) -> array:
    """The stored fingerprint ring; a row written before fingerprints existed has none."""
    if raw is None or len(raw) != 4 * SLOTS:
        return new_prints()
    return array("I", bytes(raw))


def _seq(row: tuple) -> DeviceSeq:
    return DeviceSeq(row[0], row[1], row[2], row[3] % 2**64, row[4], row[5], row[6], row[7], row[8], row[9],
                     _prints(row[10]), row[11], row[12])


class PostgresSeqStore:
    """device_seq_tracking rows; implements collector.sequencing.ports.SeqStore."""

    def __init__(self, db: Database):
        self._db = db

    def load(self, device_id: str) -> DeviceSeq | None:
        """The stored state of one device."""
        with self._db.transaction() as cur:
            cur.execute(_SEQ_COLUMNS + " WHERE device_id = %s", (device_id,))
            row = cur.fetchone()
        return None if row is None else _seq(row)

    def load_many(self, device_ids: list[str]) -> dict[str, DeviceSeq]:
        """The stored states of these devices, in one query (a batch's devices not seen before)."""
        with self._db.transaction() as cur:
            cur.execute(_SEQ_COLUMNS + " WHERE device_id = ANY(%s)", (list(device_ids),))
            return {row[0]: _seq(row) for row in cur.fetchall()}

    def save(self, rows: list[DeviceSeq]) -> None:
        """Upsert many states in one statement."""
        values = [(r.device_id, r.epoch, r.last_seq, _signed64(r.window_bits), r.gaps_total, r.missing_total,
                   r.duplicates_total, r.reboots_total, r.boot_at, r.last_ts, r.prints.tobytes(), r.registration,
                   r.prev_ts)
                  for r in rows]
        with self._db.transaction() as cur:
            psycopg2.extras.execute_values(cur, _UPSERT, values,
                                           template="(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::uuid,%s,now())")
