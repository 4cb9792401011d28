"""MQTT -> RabbitMQ bridge against the real Mosquitto and RabbitMQ: exactly once, sequence rules on the wire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from iothub import topology
from iothub.contract import GapNotice
from iothub.contract.ingest import message_id
from tests.collector.conftest import hello, sample, telemetry
from tests.support.poll import wait_for


def settle(edge) -> None:
    """Wait until the edge has nothing received-but-unacked and nothing unconfirmed."""
    wait_for(edge.drained, timeout=15, what="edge idle")


def test_each_message_arrives_exactly_once_with_its_deterministic_id(edge, device, make_device, tap, device_type):
    dev = make_device()
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{dev}.*"])
    device.send(dev, hello(dev, 0, 3), "hello")
    for seq in range(1, 5):
        device.send(dev, telemetry(dev, seq, n=3))
    wait_for(lambda: len(out.drain()) >= 5, what="5 messages")
    settle(edge)
    received = out.drain()
    assert len(received) == 5
    bodies = out.bodies()
    assert [b["seq"] for b in bodies] == [0, 1, 2, 3, 4]
    assert [b["msg_type"] for b in bodies] == ["hello"] + ["telemetry"] * 4
    for (props, _), body in zip(received, bodies, strict=True):
        assert props.message_id == body["msg_id"] == message_id(dev, 0, body["seq"])
        assert props.delivery_mode == 2
        assert body["device_type"] == device_type and body["source"] == "mqtt" and body["epoch"] == 0
    assert len(bodies[1]["body"]["measurements"]) == 3


def test_duplicates_are_dropped_and_counted(edge, device, make_device, tap):
    dev = make_device()
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{dev}.*"])
    before = sample("iothub_collector_duplicates_total", source="mqtt")
    sent = {seq: telemetry(dev, seq) for seq in (1, 2, 3)}  # a duplicate is the same message delivered again
    for seq in (1, 2, 2, 1, 3, 2):
        device.send(dev, sent[seq])
    wait_for(lambda: sample("iothub_collector_duplicates_total", source="mqtt") - before == 3, what="3 duplicates")
    settle(edge)
    assert sorted(b["seq"] for b in out.bodies()) == [1, 2, 3]


def test_gap_is_counted_and_published_as_a_notice(edge, device, make_device, tap, device_type):
    dev = make_device()
    notices = tap(topology.NOTICES_EXCHANGE, [f"gap.{device_type}.{dev}.*"])
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{dev}.*"])
    missing_before = sample("iothub_collector_missing_messages_total")
    sent = {seq: telemetry(dev, seq) for seq in (1, 2, 4, 7)}  # built in device order: 4 is older than 7
    for seq in (1, 2, 7, 4):
        device.send(dev, sent[seq])
    wait_for(lambda: len(out.drain()) == 4, what="4 messages (the late 4 fills the gap)")
    notice = GapNotice.decode(wait_for(notices.drain, what="gap notice")[0][1])
    assert (notice.device_id, notice.expected_seq, notice.received_seq, notice.missing) == (dev, 3, 7, 4)
    assert notice.device_type == device_type
    wait_for(lambda: sample("iothub_collector_missing_messages_total") - missing_before >= 4, what="missing count")


def test_reboot_starts_a_new_epoch_instead_of_dropping_data(edge, device, make_device, tap):
    dev = make_device()
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{dev}.*"])
    reboots = sample("iothub_collector_reboots_total")
    boot = datetime.now(UTC)
    device.send(dev, hello(dev, 0, 1, ts=boot.isoformat()), "hello")
    device.send(dev, telemetry(dev, 1))
    device.send(dev, telemetry(dev, 2))
    later = (boot + timedelta(minutes=5)).isoformat()
    device.send(dev, hello(dev, 0, 2, ts=later), "hello")  # power cycle: seq restarts at 0
    device.send(dev, telemetry(dev, 1))
    wait_for(lambda: len(out.drain()) == 5, what="5 messages over two epochs")
    bodies = out.bodies()
    assert [(b["epoch"], b["seq"]) for b in bodies] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert len({b["msg_id"] for b in bodies}) == 5
    wait_for(lambda: sample("iothub_collector_reboots_total") - reboots == 1, what="reboot counted")
    dups = sample("iothub_collector_duplicates_total", source="mqtt")
    device.send(dev, hello(dev, 0, 2, ts=later), "hello")  # redelivered hello of the new boot: a duplicate
    wait_for(lambda: sample("iothub_collector_duplicates_total", source="mqtt") > dups, what="duplicate hello")


def test_wrap_around_continues_the_epoch(edge, device, make_device, tap):
    dev = make_device()
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{dev}.*"])
    reboots = sample("iothub_collector_reboots_total")
    for seq in (2**32 - 2, 2**32 - 1, 0, 1):
        device.send(dev, telemetry(dev, seq))
    wait_for(lambda: len(out.drain()) == 4, what="4 messages across the wrap")
    settle(edge)
    assert [(b["epoch"], b["seq"]) for b in out.bodies()] == [(0, 2**32 - 2), (0, 2**32 - 1), (0, 0), (0, 1)]
    assert sample("iothub_collector_reboots_total") == reboots


def test_v1_and_status_messages_are_never_deduplicated(edge, device, make_device, tap):
    dev = make_device()
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{dev}.*"])
    v1 = telemetry(dev, None)
    device.send(dev, v1)
    device.send(dev, v1)
    device.send(dev, {"device_id": dev, "ts": v1["ts"], "status": "offline"}, "status")
    wait_for(lambda: len(out.drain()) == 3, what="2 v1 messages and a status")
    bodies = out.bodies()
    assert [(b["msg_type"], b["seq"]) for b in bodies] == [("telemetry", -1), ("telemetry", -1), ("status", -1)]
    assert len({b["msg_id"] for b in bodies}) == 3
    assert out.drain()[2][0].message_id == bodies[2]["msg_id"]


def test_shared_subscription_splits_the_stream_between_collectors(start_edge, device, make_device, tap, uid):
    first = start_edge(client_id=f"collector-{uid}-a", MQTT_SHARE_GROUP=f"g{uid}")
    second = start_edge(client_id=f"collector-{uid}-b", MQTT_SHARE_GROUP=f"g{uid}")
    devs = [make_device() for _ in range(4)]
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{d}.*" for d in devs])
    for seq in range(1, 11):
        for dev in devs:
            device.send(dev, telemetry(dev, seq))
    wait_for(lambda: len(out.drain()) >= 40, what="40 messages")
    wait_for(lambda: first.drained(second), what="both pipelines idle")
    # Without the share group both collectors would receive and publish every message.
    assert len(out.drain()) == 40
    assert len({b["msg_id"] for b in out.bodies()}) == 40
