"""Ingest partitions: stateless bridges on several brokers, sequencer replicas sharing the partitions.

A fleet's stream is stored exactly once whichever bridge took each copy and whichever sequencer judged it; gaps
and reboots are counted as injected; replicas spread the partitions and fail over without loss or duplicates.
"""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from iothub import topology
from iothub.contract import GapNotice
from tests.collector.conftest import Device, telemetry, wipe_session
from tests.support import procs
from tests.support.poll import wait_for

PARTITIONS = 4


@pytest.fixture
def broker_b(tmp_path):
    """A second Mosquitto with the project's config."""
    server = procs.mosquitto(tmp_path).start()
    yield server
    server.stop()


def _fleet(make_device, n: int) -> list[str]:
    return [make_device() for _ in range(n)]


WRAP = 2**32 - 15  # device 2 starts here, so its seq wraps round 2^32 to 0 halfway


def _seq(devs: list[str], dev: str, i: int) -> tuple[int, int]:
    """(epoch, seq) of device `dev`'s i-th message in the script."""
    if dev == devs[1] and i >= 15:
        return 1, i - 15  # rebooted: counts from 0 again, in a new epoch
    if dev == devs[2]:
        return 0, (WRAP + i) % 2**32
    return 0, i


def _script(devs: list[str]) -> list[tuple[str, dict]]:
    """30 messages per device; device 0 loses seqs 10-12 (one gap of 3), device 1 reboots after its 15th,
    device 2 wraps round 2^32."""
    return [(dev, telemetry(dev, _seq(devs, dev, i)[1])) for dev in devs for i in range(30)
            if not (dev == devs[0] and i in (10, 11, 12))]


def _keys(tap) -> list[tuple[str, int, int]]:
    return [(b["device_id"], b["epoch"], b["seq"]) for b in tap.bodies()]


def _expected(devs: list[str]) -> list[tuple[str, int, int]]:
    return sorted((dev, *_seq(devs, dev, i)) for dev in devs for i in range(30)
                  if not (dev == devs[0] and i in (10, 11, 12)))


def test_two_brokers_each_read_by_its_own_bridge_store_each_message_once_across_gap_reboot_and_wrap(
        start_edge, mqtt_broker, broker_b, make_device, tap, uid):
    first = start_edge(client_id=f"edge-{uid}-a", INGEST_PARTITIONS=str(PARTITIONS))
    second = start_edge(client_id=f"edge-{uid}-b", MQTT_BROKERS=f"127.0.0.1:{broker_b.port}",
                        INGEST_PARTITIONS=str(PARTITIONS))
    assert second.bridge.wait_connected(15)
    devs = _fleet(make_device, 6)
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{d}.*" for d in devs])
    gaps = tap(topology.NOTICES_EXCHANGE, [f"gap.*.{d}.*" for d in devs])
    a, b = Device(mqtt_broker.port, f"t{uid}/"), Device(broker_b.port, f"t{uid}/")
    try:
        for dev, body in _script(devs):  # a spec meter: every message to each of its brokers
            a.send(dev, body)
            b.send(dev, body)
        wait_for(lambda: len(out.drain()) >= len(_expected(devs)), timeout=30, what="the fleet's messages")
        wait_for(lambda: first.drained(second), what="both pipelines idle")
        assert sorted(_keys(out)) == _expected(devs)  # each once: no copy from the other broker, no loss
        notices = [GapNotice.decode(body) for _, body in gaps.drain()]
        assert [(n.device_id, n.expected_seq, n.missing) for n in notices] == [(devs[0], 10, 3)]
        assert first.edge.ingest.forwarded > 0 and second.edge.ingest.forwarded > 0
    finally:
        a.close()
        b.close()
        wipe_session(broker_b.port, second.settings.mqtt_client_id)


def test_sequencer_replicas_spread_the_partitions_and_fail_over(start_edge, device, make_device, tap, uid):
    group = f"g{uid}"
    first = start_edge(client_id=f"edge-{uid}-a", MQTT_SHARE_GROUP=group, INGEST_PARTITIONS=str(PARTITIONS))
    second = start_edge(client_id=f"edge-{uid}-b", MQTT_SHARE_GROUP=group, INGEST_PARTITIONS=str(PARTITIONS))
    devs = _fleet(make_device, 16)  # enough devices that every partition has some
    assert {topology.partition_of(d, PARTITIONS) for d in devs} == set(range(PARTITIONS))
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{d}.*" for d in devs])
    seqs = Counter()
    last: dict[str, dict] = {}

    def send_round() -> None:
        for dev in devs:
            last[dev] = telemetry(dev, seqs[dev])
            device.send(dev, last[dev])
            seqs[dev] += 1

    def spread() -> bool:
        send_round()
        mine, theirs = first.sequencer.consumer.owned, second.sequencer.consumer.owned
        return len(mine) == len(theirs) == PARTITIONS // 2 and not mine & theirs

    # The replica subscribed first owns every partition; it hands the excess over once it sees two replicas.
    wait_for(spread, timeout=30, interval=0.1, what="partitions spread evenly over both sequencers")
    for dev in devs:  # the new owners must know what the old one accepted: these copies are duplicates
        device.send(dev, last[dev])
    taken = set(second.sequencer.consumer.owned)
    second.sequencer.stop()  # its partitions fail over to the first replica, mid-stream
    for _ in range(5):
        send_round()
    wait_for(lambda: first.sequencer.consumer.owned >= taken, what="the stopped replica's partitions taken over")
    wait_for(lambda: len(out.drain()) >= sum(seqs.values()), timeout=30, what="every message")
    wait_for(lambda: first.drained(second), what="idle")
    keys = Counter(_keys(out))
    assert set(keys) == {(d, 0, s) for d in devs for s in range(seqs[d])}  # no loss, and no new epoch
    assert max(keys.values()) == 1  # nothing published twice
    for dev in devs:
        state = first.seq_state(dev)
        assert (state.epoch, state.last_seq, state.gaps_total, state.duplicates_total) == (0, seqs[dev] - 1, 0, 1)
    assert orjson.loads(orjson.dumps(sorted(first.sequencer.consumer.owned))) == list(range(PARTITIONS))


def test_a_partition_no_sequencer_consumes_is_reported_without_owner(start_edge, db, pg_dsn, amqp_url, uid):
    from prometheus_client import REGISTRY

    from collector.edge.app import Edge
    from tests.collector.conftest import edge_settings, sample
    from tests.support.procs import free_port

    start_edge(INGEST_PARTITIONS=str(PARTITIONS))  # its sequencer subscribes to partitions 0-3
    # An edge configured for more partitions than the sequencers: its extra partitions would fill up unread.
    wider = Edge(edge_settings(pg_dsn, amqp_url, free_port(), client_id=f"wide-{uid}", prefix=f"w{uid}/",
                               INGEST_PARTITIONS=str(PARTITIONS + 2), HTTP_INGEST_ENABLED="false"), db)
    wider.publisher.start(15)
    wider.reporter.start()
    try:
        last = f"ingest.p{PARTITIONS + 1}"
        # get_sample_value is None until the figure is exported: 0 must be reported, not merely absent.
        wait_for(lambda: REGISTRY.get_sample_value("iothub_partition_consumers", {"queue": last}) == 0
                 and sample("iothub_partition_consumers", queue="ingest.p0") == 1, what="partition figures")
    finally:
        wider.reporter.stop()
        wider.publisher.stop()
