"""The rule engine's partitions: state per partition in PostgreSQL (fenced), replicas sharing them over RabbitMQ."""

from __future__ import annotations

import itertools
import time

import pika
import pytest

from iothub import topology
from rule_engine.repository import PostgresStore
from rule_engine.service import Fenced, RuleService
from tests.rule_engine.conftest import events_of, start_engine
from tests.rule_engine.helpers import T0, ingest, reading
from tests.support.poll import wait_for

P = topology.DEFAULT_PARTITIONS


def spread(prefix: str, per_partition: int) -> list[str]:
    """Device ids covering every partition `per_partition` times."""
    found: dict[int, list[str]] = {p: [] for p in range(P)}
    for i in itertools.count():
        device_id = f"{prefix}-{i}"
        bucket = found[topology.partition_of(device_id, P)]
        if len(bucket) < per_partition:
            bucket.append(device_id)
        if all(len(b) == per_partition for b in found.values()):
            return [d for p in range(P) for d in found[p]]


def _service(db) -> RuleService:
    return RuleService(PostgresStore(db, owner="test"), partitions=P)


@pytest.fixture
def hot(rules, uid):
    """A threshold rule over the devices of this test's device type; returns (rule_id, device_type)."""
    device_type = f"part-{uid}"
    rule_id = rules(name=f"part {uid}", scope="device_type", device_type=device_type, metric="temperature",
                    operator="gt", threshold=50, for_seconds=2)
    return rule_id, device_type


def test_a_partition_is_loaded_on_acquire_dropped_on_release_and_its_old_owner_is_fenced(db, hot, uid):
    _, device_type = hot
    device = spread(f"own-{uid}", 1)[3]
    partition = topology.partition_of(device, P)
    a = _service(db)
    a.acquire(partition)
    readings = [reading(device, seq, T0 + seq, 60, device_type=device_type) for seq in range(3)]
    assert [o.payload["change"] for o in a.handle(readings).outbox] == ["opened"]
    b = _service(db)
    b.acquire(partition)  # B takes the partition over: A's writes are fenced from now on
    assert b.evaluator.progress[device].seq == 2 and b.evaluator.open_events([device])
    with pytest.raises(Fenced):
        a.handle([reading(device, 3, T0 + 3, 61, device_type=device_type)])
    a.release({partition})
    assert device not in a.evaluator.progress and not a.evaluator.open_events([device])
    changes = b.handle([reading(device, seq, T0 + seq, 61, device_type=device_type) for seq in (2, 3)])
    assert changes.duplicates == 1 and not changes.outbox  # seq 2 was A's, seq 3 repeats the open event
    [event] = events_of(db, device)
    assert (event["status"], event["count"]) == ("open", 2)


def test_a_batch_resolving_a_stored_event_and_opening_the_next_commits(db, hot, uid):
    _, device_type = hot
    device = f"flip-{uid}"
    service = _service(db)
    service.acquire(topology.partition_of(device, P))
    service.handle([reading(device, seq, T0 + seq, 60, device_type=device_type) for seq in range(3)])
    values = [40, 60, 60, 60]  # resolved, then pending and open again, all in one batch
    changes = service.handle([reading(device, 3 + i, T0 + 3 + i, v, device_type=device_type)
                              for i, v in enumerate(values)])
    assert [o.payload["change"] for o in changes.outbox] == ["resolved", "opened"]
    assert [e["status"] for e in events_of(db, device)] == ["resolved", "open"]


RUN, CYCLES = 5, 8  # per cycle: 5 readings above (pending 2 s, then open, counted 3 times), 5 below (resolved)
# Stopped between batches, not with messages in flight: RabbitMQ may redeliver a stopped consumer's unacked
# messages after newer ones (README "Partitions"); the SIGKILL tests check in-flight messages for loss and doubles.


def _stream(feeder, devices, device_type, seqs: range) -> int:
    """Publish these seqs of the cycles for every device (pipelined); returns how many."""
    for seq in seqs:
        value = 60 if seq % (2 * RUN) < RUN else 40
        for device in devices:
            feeder.send(ingest(device, device_type, seq, T0 + seq, [("temperature", value, "Cel")]), wait=False)
    return len(seqs) * len(devices)


def _nudge(feeder, fillers, counter) -> None:
    """Traffic on every partition (devices no rule applies to): replicas rebalance only partitions that deliver."""
    seq = next(counter)
    for device in fillers:
        feeder.send(ingest(device, "filler", seq, time.time(), [("temperature", 1, "Cel")]), wait=False)


@pytest.fixture
def pair(pg_dsn, amqp_url):
    """Replica A (owning every partition), then B standing by; stopped at the end (B may be stopped before).

    Rules made by fixtures listed before this one are loaded; later ones need a notice."""
    a = start_engine(pg_dsn, amqp_url, owns=P)
    b = start_engine(pg_dsn, amqp_url)
    yield a, b
    b.stop()
    a.stop()


def _split(pair, feeder, uid) -> None:
    a, b = pair
    fillers, counter = spread(f"fill-{uid}", 1), itertools.count()
    wait_for(lambda: _nudge(feeder, fillers, counter) or (b.service.owned and a.service.owned), timeout=60,
             what="the replicas share the partitions")
    assert not a.service.owned.keys() & b.service.owned.keys()


def test_two_replicas_share_the_partitions_and_a_stopped_one_hands_its_state_over(hot, pair, feeder, db, uid,
                                                                                      amqp_url):
    a, b = pair
    rule_id, device_type = hot
    devices = spread(f"pair-{uid}", 2)
    _split(pair, feeder, uid)
    half = CYCLES // 2 * 2 * RUN + 3  # mid-cycle: the 5th event is open (count 1) when B stops
    sent = _stream(feeder, devices, device_type, range(half))
    feeder.flush(sent, timeout=120)
    mine = [d for d in devices if topology.partition_of(d, P) in b.service.owned]
    assert mine, "B owns partitions of the test's devices"
    wait_for(lambda: all(app.service.evaluator.progress.get(d) and app.service.evaluator.progress[d].seq == half - 1
                         for app in (a, b) for d in devices if topology.partition_of(d, P) in app.service.owned),
             timeout=60, what="the first half evaluated")
    b.stop()  # its partitions move to A, which reads their state afresh
    wait_for(lambda: len(a.service.owned) == P, timeout=30, what="A owns every partition again")
    _stream(feeder, devices, device_type, range(half, CYCLES * 2 * RUN))
    # As one replica would: each cycle opens one event at its first reading (pending state kept across
    # handovers), counts it 3 times (nothing doubled) and resolves it.
    starts = [T0 + cycle * 2 * RUN for cycle in range(CYCLES)]
    expected = ({d: (CYCLES, CYCLES, starts) for d in devices},
                {"opened": CYCLES * len(devices), "resolved": CYCLES * len(devices)})
    try:
        wait_for(lambda: _outcome(db, rule_id) == expected and _backlog(amqp_url) == 0, timeout=60,
                 what="every reading evaluated")
    except AssertionError:
        print("BACKLOG", _backlog(amqp_url), "OWNED", a.service.owned, b.service.owned)
        got = _outcome(db, rule_id)
        print("CHANGES", got[1])
        for d in devices:
            if got[0].get(d) != expected[0][d]:
                print("DEV", d, topology.partition_of(d, P), got[0].get(d))
        raise
    assert _outcome(db, rule_id) == expected


def _outcome(db, rule_id: str) -> tuple[dict, dict]:
    with db.transaction() as cur:
        cur.execute("SELECT device_id, count(*), count(*) FILTER (WHERE status = 'resolved' AND count = 3), "
                    "array_agg(extract(epoch FROM first_ts)::float8 ORDER BY first_ts) FROM events "
                    "WHERE rule_id = %s GROUP BY device_id", (rule_id,))
        per_device = {row[0]: row[1:] for row in cur.fetchall()}
        cur.execute("SELECT payload->>'change', count(*) FROM outbox WHERE payload->'event'->>'rule_id' = %s "
                    "GROUP BY 1", (rule_id,))
        return per_device, dict(cur.fetchall())


def _backlog(amqp_url: str) -> int:
    """Messages waiting in the rule engine's partitions (ready or delivered, not yet acked)."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        return sum(channel.queue_declare(topology.rule_engine_queue(p).name, passive=True).method.message_count
                   for p in range(P))
    finally:
        conn.close()


def test_with_two_replicas_a_silent_device_goes_offline_exactly_once(pair, feeder, rules, db, uid):
    a, b = pair
    silent = f"quiet-{uid}"
    rule_id = rules(name=f"offline {silent}", kind="offline", scope="device", device_id=silent, severity="critical",
                    params={"factor": 0.02})  # 0.02 x max(10, 60) s = 1.2 s of silence
    _split(pair, feeder, uid)
    versions = (a.service.rules_version, b.service.rules_version)
    feeder.rules_changed()  # a replica reloads on its next sweep or batch
    wait_for(lambda: a.service.rules_version > versions[0] and b.service.rules_version > versions[1],
             what="rules reloaded by both replicas")
    feeder.send(ingest(silent, "t1", 0, time.time(), [("temperature", 20, "Cel")]))
    [event] = wait_for(lambda: events_of(db, silent, "offline"), timeout=20, what="offline after silence")
    assert event["status"] == "open" and event["trigger_values"]["reason"] == "silent"
    swept = (a.handler.sweeps, b.handler.sweeps)
    wait_for(lambda: a.handler.sweeps > swept[0] + 5 and b.handler.sweeps > swept[1] + 5, timeout=30,
             what="more sweeps on both replicas")
    assert len(events_of(db, silent, "offline")) == 1
    with db.transaction() as cur:
        cur.execute("SELECT payload->>'change' FROM outbox WHERE payload->'event'->>'rule_id' = %s", (rule_id,))
        assert [row[0] for row in cur.fetchall()] == ["opened"]
