"""PostgreSQL adapter: rules, rule state, device progress, events and the outbox in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import orjson
import psycopg2.errors
from psycopg2.extras import execute_values

from iothub import topology
from iothub.db import Database
from rule_engine.changes import Changes, Key
from rule_engine.evaluator import ExpiredCommand
from rule_engine.model import Event, Intervals, Progress, Rule, RuleState
from rule_engine.service import Fenced, StaleRules

_RULE_COLUMNS = ("id::text, name, kind, scope, device_id, device_type, metric, operator, threshold, severity, "
                 "message_template, for_seconds, clear_hysteresis, renotify_seconds, cooldown_seconds, params, "
                 "enabled")
_STATE_SQL = """
SELECT coalesce(rs.rule_id, e.rule_id)::text, coalesce(rs.device_id, e.device_id),
       extract(epoch FROM rs.pending_since)::float8, rs.last_value, extract(epoch FROM rs.last_notified_at)::float8,
       extract(epoch FROM rs.cleared_at)::float8,
       e.id::text, e.rule_name, e.rule_kind, e.device_type, e.severity, e.message, e.status,
       extract(epoch FROM e.first_ts)::float8, extract(epoch FROM e.last_ts)::float8, e.count, e.trigger_values,
       e.last_value
FROM rule_state rs
FULL JOIN (SELECT * FROM events WHERE status <> 'resolved' AND rule_id IS NOT NULL) e
       ON e.rule_id = rs.rule_id AND e.device_id = rs.device_id"""
_PROGRESS_SQL = """SELECT device_id, device_type, epoch, seq, window_bits,
       coalesce(extract(epoch FROM last_seen), 0)::float8, gap_epoch, gap_seq FROM rule_engine_devices"""
# The reported configuration is what the device accepted (update_config acks, merged by the state writer).
_INTERVALS_SQL = """
SELECT d.device_id,
       CASE WHEN jsonb_typeof(c.reported -> 'send_interval_s') = 'number'
            THEN (c.reported ->> 'send_interval_s')::float8 END,
       CASE WHEN jsonb_typeof(c.reported -> 'hello_interval_s') = 'number'
            THEN (c.reported ->> 'hello_interval_s')::float8 END,
       CASE WHEN jsonb_typeof(c.reported -> 'brokers') = 'array' THEN jsonb_array_length(c.reported -> 'brokers') END
FROM device_configs c JOIN devices d ON d.id = c.device_id WHERE c.reported IS NOT NULL"""
# Overdue commands of every device: the caller keeps those of its partitions (a device's partition is crc32 of its id,
# which SQL cannot compute), so each command is expired by its device's owner, which holds that device's rule state.
_DUE_SQL = """SELECT c.id::text, d.device_id FROM commands c JOIN devices d ON d.id = c.device_id
WHERE c.status IN ('pending', 'sent') AND c.expires_at < now() ORDER BY c.expires_at LIMIT %s"""
_EXPIRE_SQL = """
WITH expired AS (
    UPDATE commands c SET status = 'expired', detail = coalesce(c.detail, 'not acknowledged before expires_at')
    WHERE c.id = ANY(%s::uuid[]) AND c.status IN ('pending', 'sent')
    RETURNING c.id, c.device_id, c.cmd, c.expires_at)
SELECT x.id::text, d.device_id, t.name, x.cmd, extract(epoch FROM x.expires_at)::float8
FROM expired x JOIN devices d ON d.id = x.device_id JOIN device_types t ON t.id = d.device_type_id"""
_CLAIM_SQL = """INSERT INTO rule_engine_partitions (partition, generation, owner) VALUES (%s, 1, %s)
ON CONFLICT (partition) DO UPDATE SET generation = rule_engine_partitions.generation + 1, owner = excluded.owner,
    acquired_at = now()
RETURNING generation"""
_FENCE_SQL = "SELECT partition, generation FROM rule_engine_partitions WHERE partition = ANY(%s) FOR SHARE"
_INSERT_EVENTS = """INSERT INTO events (id, rule_id, rule_name, rule_kind, device_id, device_type, severity, message,
    status, first_ts, last_ts, count, trigger_values, last_value, resolved_by, resolved_at) VALUES %s"""
_EVENT_ROW = ("(%s::uuid, %s::uuid, %s, %s, %s, %s, %s, %s, %s, to_timestamp(%s), to_timestamp(%s), %s, %s::jsonb, "
              "%s::float8, %s, to_timestamp(%s))")
_UPDATE_EVENTS = """UPDATE events e SET severity = v.severity, count = v.count, last_ts = to_timestamp(v.last_ts),
    last_value = v.last_value,
    status = CASE WHEN v.status = 'resolved' THEN 'resolved' ELSE e.status END,
    resolved_by = CASE WHEN v.status = 'resolved' THEN v.resolved_by ELSE e.resolved_by END,
    resolved_at = CASE WHEN v.status = 'resolved' THEN to_timestamp(v.resolved_at) ELSE e.resolved_at END,
    updated_at = now()
FROM (VALUES %s) AS v(id, severity, count, last_ts, last_value, status, resolved_by, resolved_at)
WHERE e.id = v.id"""
_UPDATE_ROW = "(%s::uuid, %s, %s::int, %s::float8, %s::float8, %s, %s, %s::float8)"
_UPSERT_STATE = """INSERT INTO rule_state (rule_id, device_id, pending_since, open_event_id, last_value,
    last_notified_at, cleared_at, updated_at) VALUES %s
ON CONFLICT (rule_id, device_id) DO UPDATE SET pending_since = excluded.pending_since,
    open_event_id = excluded.open_event_id, last_value = excluded.last_value,
    last_notified_at = excluded.last_notified_at, cleared_at = excluded.cleared_at, updated_at = now()"""
_STATE_ROW = "(%s::uuid, %s, to_timestamp(%s), %s::uuid, %s::float8, to_timestamp(%s), to_timestamp(%s), now())"
_UPSERT_PROGRESS = """INSERT INTO rule_engine_devices (device_id, device_type, epoch, seq, window_bits, last_seen,
    gap_epoch, gap_seq, updated_at) VALUES %s
ON CONFLICT (device_id) DO UPDATE SET device_type = excluded.device_type, epoch = excluded.epoch,
    seq = excluded.seq, window_bits = excluded.window_bits, last_seen = excluded.last_seen,
    gap_epoch = excluded.gap_epoch, gap_seq = excluded.gap_seq, updated_at = now()"""
_PROGRESS_ROW = "(%s, %s, %s, %s, %s, to_timestamp(%s), %s, %s, now())"
_OUTBOX_ROW = "(%s::uuid, %s, %s, %s::jsonb)"
_PAGE = 1000
_SIGN = 1 << 63


class PostgresUnitOfWork:
    """The UnitOfWork port on one psycopg2 cursor."""

    def __init__(self, cur):
        self.cur = cur

    def event_statuses(self, event_ids: Sequence[str]) -> dict[str, str]:
        """Status of the events, row-locked until commit."""
        self.cur.execute("SELECT id::text, status FROM events WHERE id = ANY(%s::uuid[]) ORDER BY id FOR UPDATE",
                         (list(event_ids),))
        return dict(self.cur.fetchall())

    def expire_commands(self, limit: int, mine: Callable[[str], bool]) -> list[ExpiredCommand]:
        """Expire overdue commands of the devices `mine` accepts (the API sets expires_at; the rule engine sweeps)."""
        # Several times the limit is read: other partitions' overdue commands come first in the order at times.
        self.cur.execute(_DUE_SQL, (limit * 8,))
        ids = [cmd_id for cmd_id, device_id in self.cur.fetchall() if mine(device_id)][:limit]
        if not ids:
            return []
        # The status is re-checked under the row lock: an acknowledgement the API committed meanwhile wins.
        self.cur.execute(_EXPIRE_SQL, (ids,))
        return [ExpiredCommand(*row) for row in self.cur.fetchall()]

    def save(self, ch: Changes) -> None:
        """Write everything the batch changed."""
        try:
            self._save(ch)
        except (psycopg2.errors.ForeignKeyViolation, psycopg2.errors.UniqueViolation) as exc:
            raise StaleRules(str(exc)) from exc

    def _save(self, ch: Changes) -> None:
        cur = self.cur
        # Updates first: a batch that resolves a stored event and opens the next one must not have both open at
        # once (events_one_open), which a batch of a partition's backlog easily holds.
        if ch.updated:
            rows = [(e.id, e.severity, e.count, e.last_ts, e.last_value, e.status, e.resolved_by, e.resolved_at)
                    for e in ch.updated.values()]
            execute_values(cur, _UPDATE_EVENTS, rows, _UPDATE_ROW, _PAGE)
        if ch.inserted:
            execute_values(cur, _INSERT_EVENTS, [_event_row(e) for e in ch.inserted.values()], _EVENT_ROW, _PAGE)
        if ch.states:
            rows = [(rule_id, device_id, st.pending_since, st.event.id if st.event else None, st.last_value,
                     st.last_notified_at, st.cleared_at) for (rule_id, device_id), st in ch.states.items()]
            execute_values(cur, _UPSERT_STATE, rows, _STATE_ROW, _PAGE)
        if ch.save_progress:
            rows = [(device_id, p.device_type, p.epoch, p.seq, p.window - (1 << 64) if p.window >= _SIGN else p.window,
                     p.last_seen or None, p.gap_epoch, p.gap_seq) for device_id, p in ch.save_progress.items()]
            execute_values(cur, _UPSERT_PROGRESS, rows, _PROGRESS_ROW, _PAGE)
        if ch.outbox:
            rows = [(o.message_id, topology.EVENTS_EXCHANGE, o.routing_key, orjson.dumps(o.payload).decode())
                    for o in ch.outbox]
            execute_values(cur, "INSERT INTO outbox (message_id, exchange, routing_key, payload) VALUES %s",
                           rows, _OUTBOX_ROW, _PAGE)


def _event_row(e: Event) -> tuple:
    return (e.id, e.rule_id, e.rule_name, e.rule_kind, e.device_id, e.device_type, e.severity, e.message, e.status,
            e.first_ts, e.last_ts, e.count, orjson.dumps(e.trigger_values).decode(), e.last_value, e.resolved_by,
            e.resolved_at)


class PostgresStore:
    """The Store port on a Database pool; partitions are fenced by their generation in rule_engine_partitions."""

    def __init__(self, db: Database, owner: str = "rule-engine"):
        self.db = db
        self.owner = owner

    @contextmanager
    def transaction(self, fence: Mapping[int, int] | None = None) -> Iterator[PostgresUnitOfWork]:
        """One transaction; it first proves each fenced partition still has the generation we acquired."""
        with self.db.transaction() as cur:
            if fence:
                cur.execute(_FENCE_SQL, (sorted(fence),))
                stored = dict(cur.fetchall())
                moved = sorted(p for p, generation in fence.items() if stored.get(p) != generation)
                if moved:
                    raise Fenced(f"partitions {moved} were acquired by another replica")
            yield PostgresUnitOfWork(cur)

    def claim(self, partition: int) -> int:
        """Take a partition over: a new generation, after the previous owner's transaction in flight ended."""
        with self.db.transaction() as cur:
            cur.execute(_CLAIM_SQL, (partition, self.owner))
            return cur.fetchone()[0]

    def load_rules(self) -> tuple[list[Rule], dict[str, tuple[int, int]]]:
        """Every rule (the index skips disabled ones) and device-type intervals."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {_RULE_COLUMNS} FROM rules")  # noqa: S608 - constant column list
            rules = [Rule(*row) for row in cur.fetchall()]
            cur.execute("SELECT name, send_interval_s, hello_interval_s FROM device_types")
            intervals = {name: (send, hello) for name, send, hello in cur.fetchall()}
        return rules, intervals

    def device_intervals(self, device_ids: Sequence[str] | None = None) -> dict[str, Intervals]:
        """Per device, the send/hello intervals of its reported (applied) configuration, where it has them."""
        where = "" if device_ids is None else " AND d.device_id = ANY(%s)"
        with self.db.transaction() as cur:
            cur.execute(_INTERVALS_SQL + where, () if device_ids is None else (list(device_ids),))
            return {row[0]: (row[1], row[2], row[3]) for row in cur.fetchall() if any(row[1:])}

    def load_state(self, mine: Callable[[str], bool]) -> tuple[dict[Key, RuleState], dict[str, Progress]]:
        """Rule state with its open events, and device progress, of the devices `mine` accepts."""
        # Read whole and filtered here: the partition (crc32 of the device id) has no SQL expression.
        states: dict[Key, RuleState] = {}
        with self.db.transaction() as cur:
            cur.execute(_STATE_SQL)
            for row in cur.fetchall():
                rule_id, device_id, pending, last_value, notified, cleared = row[:6]
                if not mine(device_id):
                    continue
                event = None
                if row[6] is not None:
                    event = Event(row[6], rule_id, row[7], row[8], device_id, row[9], row[10], row[11], row[13],
                                  row[14], status=row[12], count=row[15], trigger_values=row[16],
                                  last_value=row[17])
                states[(rule_id, device_id)] = RuleState(pending, event, last_value, notified, cleared)
            cur.execute(_PROGRESS_SQL)
            progress = {row[0]: Progress(row[1], row[2], row[3], row[4] & 0xFFFFFFFFFFFFFFFF, row[5], row[6], row[7],
                                         row[5]) for row in cur.fetchall() if mine(row[0])}
        return states, progress
