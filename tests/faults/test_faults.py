"""Fault suite: publish a known ledger, inject a fault mid-stream, heal, drain, then count lost and duplicated."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime

import orjson
import pika
import pytest

from iothub import topology
from iothub.contract.ingest import SeenNotice
from tests.faults.ledger import compare
from tests.support.archive import ArchiveBucket
from tests.support.poll import wait_for
from tests.support.services import metric_value, service
from tests.support.webhook import signature_ok

pytestmark = [pytest.mark.fault, pytest.mark.slow]
PER_DEVICE = 40


def _series_keys(db, devices) -> list[tuple[str, int]]:
    with db.transaction() as cur:
        cur.execute("SELECT device_id, seq FROM telemetry WHERE device_id = ANY(%s)", (devices,))
        return [(d, s) for d, s in cur.fetchall()]


def _archive_keys(stack, db) -> list[tuple[str, int]]:
    bucket = ArchiveBucket(stack.s3.port, stack.env["S3_BUCKET"])
    return [(x["device_id"], x["seq"]) for x in bucket.visible(db, stack.devices) if x["msg_type"] == "telemetry"]


def _backlog(amqp_url: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        names = (topology.SERIES_QUEUE, topology.ARCHIVE_QUEUE, topology.STATE_QUEUE, topology.NOTIFIER_QUEUE,
                 *(topology.ingest_queue(p) for p in range(topology.DEFAULT_PARTITIONS)),
                 *(topology.rule_engine_queue(p) for p in range(topology.DEFAULT_PARTITIONS)))
        return sum(channel.queue_declare(q.name, passive=True).method.message_count for q in names)
    finally:
        conn.close()


def _event_rows(db, rule_id):
    with db.transaction(dict_rows=True) as cur:
        cur.execute("SELECT id, device_id, status, count FROM events WHERE rule_id = %s", (rule_id,))
        return cur.fetchall()


def _notification_rows(db, rule_id):
    """This test's subscription only: other tests' subscriptions in the run's database may match too."""
    with db.transaction(dict_rows=True) as cur:
        cur.execute("SELECT n.event_id, n.change_id, n.status FROM notifications n "
                    "JOIN subscriptions s ON s.id = n.subscription_id WHERE s.rule_id = %s", (rule_id,))
        return cur.fetchall()


def _assert_exactly_once(stack, db, acked) -> None:
    """Drain, then check every store: each acked reading once, one event per device, each change notified once."""
    expected = len(acked)
    wait_for(lambda: len(set(_series_keys(db, stack.devices))) >= expected, timeout=180, what="series drained")
    wait_for(lambda: len(set(_archive_keys(stack, db))) >= expected, timeout=180, what="archive drained")
    wait_for(lambda: _backlog(stack.env["AMQP_URL"]) == 0, timeout=120, what="queues drained")
    series = compare("series", acked, _series_keys(db, stack.devices))
    archive = compare("archive", acked, _archive_keys(stack, db))
    assert series.ok, series.summary()
    assert archive.ok, archive.summary()
    # Each device breached once then cleared: one event each, opened then resolved, each change notified once.
    events = wait_for(lambda: (rows := _event_rows(db, stack.rule_id)) and all(r["status"] == "resolved" for r in rows)
                      and len(rows) == len(stack.devices) and rows, timeout=120, what="events resolved")
    assert sorted(r["device_id"] for r in events) == sorted(stack.devices)
    notes = wait_for(lambda: (rows := _notification_rows(db, stack.rule_id)) and len(rows) == 2 * len(events)
                     and all(r["status"] == "sent" for r in rows) and rows, timeout=120, what="notifications sent")
    assert len({(r["event_id"], r["change_id"]) for r in notes}) == len(notes)
    delivered = [orjson.loads(r["body"])["change_id"] for r in stack.webhook.requests
                 if signature_ok(r["headers"], r["body"], stack.secret)]
    sent_ok = {str(r["change_id"]) for r in notes}
    assert sent_ok <= set(delivered)


def _kill_collector(stack):
    stack.services["collector"].restart()


def _close_rabbit_connections(stack):
    vhost = stack.env["AMQP_URL"].rsplit("/", 1)[1]
    subprocess.run(["rabbitmqctl", "-q", "close_all_connections", "-p", vhost, "fault injection"],
                   check=True, capture_output=True, timeout=60)


def _postgres_outage(stack):
    stack.pg_proxy.block()
    time.sleep(30)  # the outage itself lasts 30 s, as the scenario specifies
    stack.pg_proxy.unblock()


def _s3_outage(stack):
    stack.s3.stop()
    time.sleep(10)  # the outage itself
    stack.s3.start(timeout=60)


def _restart_mosquitto(stack):
    stack.mqtt.restart()


def _kill_rule_engine_and_notifier(stack):
    stack.services["rule-engine"].kill()
    stack.services["notifier"].kill()
    stack.services["rule-engine"].start(timeout=60)
    stack.services["notifier"].start(timeout=60)


FAULTS = {
    "collector_sigkill": _kill_collector,
    "rabbitmq_connections_closed": _close_rabbit_connections,
    "postgres_unreachable_30s": _postgres_outage,
    "s3_down": _s3_outage,
    "mosquitto_restart": _restart_mosquitto,
    "rule_engine_and_notifier_sigkill": _kill_rule_engine_and_notifier,
}


def _kill_one_bridge(stack):
    stack.services["edge-a"].restart()  # the other bridge of the share group keeps reading meanwhile


def _kill_a_sequencer(stack):
    """SIGKILL a sequencer replica that owns partitions now; the other takes them over by itself."""
    owner = max(("sequencer-a", "sequencer-b"), key=lambda n: metric_value(stack.services[n].metrics(),
                                                                            "iothub_partitions_active"))
    stack.services[owner].kill()
    wait_for(lambda: _partition_owners(stack.env["AMQP_URL"]) == topology.DEFAULT_PARTITIONS, timeout=60,
             what="every partition owned again")
    stack.services[owner].start(timeout=60)


def _kill_series_writer(stack):
    stack.services["collector-series"].restart()


def _partition_owners(amqp_url: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        return sum(channel.queue_declare(topology.ingest_queue(p).name, passive=True).method.consumer_count > 0
                   for p in range(topology.DEFAULT_PARTITIONS))
    finally:
        conn.close()


def _nudge_partitions(amqp_url: str) -> None:
    """A seen notice of a filler device straight into every rule-engine partition (nothing else reads them):
    replicas hand over only partitions that deliver (iothub.rabbit.partitioned)."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        now = datetime.now(UTC).isoformat()
        for p in range(topology.DEFAULT_PARTITIONS):
            notice = SeenNotice(f"filler-p{p}", "filler", "duplicate", now)
            channel.basic_publish("", topology.rule_engine_queue(p).name, notice.encode())
    finally:
        conn.close()


STAGED_FAULTS = {
    "bridge_sigkill": _kill_one_bridge,
    "sequencer_sigkill": _kill_a_sequencer,
    "series_writer_sigkill": _kill_series_writer,
}


@pytest.mark.parametrize("fault", list(STAGED_FAULTS), ids=list(STAGED_FAULTS))
@pytest.mark.parametrize("platform_shape", ["staged"], indirect=True)
def test_scaled_out_stages_killed_mid_stream_lose_and_duplicate_nothing(fault_stack, db, fault, platform_shape):
    acked = fault_stack.publish_stream(PER_DEVICE, STAGED_FAULTS[fault])
    assert len(acked) == PER_DEVICE * len(fault_stack.devices)
    _assert_exactly_once(fault_stack, db, acked)


def _owners(db) -> dict[int, int]:
    """Partition -> pid of the rule-engine replica that acquired it last (owner is "host:pid")."""
    with db.transaction() as cur:
        cur.execute("SELECT partition, owner FROM rule_engine_partitions")
        return {p: int(owner.rsplit(":", 1)[1]) for p, owner in cur.fetchall()}


def test_sigkill_of_a_rule_engine_replica_mid_stream_loses_and_duplicates_nothing(fault_stack, db, tmp_path):
    first = fault_stack.services["rule-engine"]
    second = fault_stack.services["rule-engine-2"] = service("rule-engine", fault_stack.env, tmp_path)
    second.name = "rule-engine-2"  # its own log files
    second.start(timeout=60)
    pids = {first.proc.pid: first, second.proc.pid: second}
    wait_for(lambda: _nudge_partitions(fault_stack.env["AMQP_URL"]) or set(_owners(db).values()) == set(pids),
             timeout=60, what="both replicas own partitions")
    victim = pids[_owners(db)[topology.partition_of(fault_stack.devices[0], topology.DEFAULT_PARTITIONS)]]
    survivor = first if victim is second else second

    def kill(stack) -> None:
        victim.kill()  # mid-stream: its partitions fail over to the survivor by themselves
        wait_for(lambda: set(_owners(db).values()) == {survivor.proc.pid}, timeout=60,
                 what="the survivor owns every partition")

    acked = fault_stack.publish_stream(PER_DEVICE, kill, rate=100.0)
    assert len(acked) == PER_DEVICE * len(fault_stack.devices)
    _assert_exactly_once(fault_stack, db, acked)


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_fault_loses_nothing_and_duplicates_nothing(fault_stack, db, fault):
    acked = fault_stack.publish_stream(PER_DEVICE, FAULTS[fault])
    assert len(acked) == PER_DEVICE * len(fault_stack.devices)
    _assert_exactly_once(fault_stack, db, acked)


def test_webhook_errors_and_timeouts_are_retried_without_duplicates(fault_stack, db):
    fault_stack.webhook.statuses.extend([500] * 6)  # the first deliveries fail, then the target recovers
    acked = fault_stack.publish_stream(PER_DEVICE, lambda stack: None)
    _assert_exactly_once(fault_stack, db, acked)
    with db.transaction() as cur:
        cur.execute("SELECT count(*) FROM notification_attempts a JOIN notifications n ON n.id = a.notification_id "
                    "JOIN subscriptions s ON s.id = n.subscription_id WHERE s.rule_id = %s AND a.response_code = 500",
                    (fault_stack.rule_id,))
        assert cur.fetchone()[0] == 6
