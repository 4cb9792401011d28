"""The MQTT PUBACK waits for the RabbitMQ confirm: a nacked message is redelivered by the broker, not lost."""

from __future__ import annotations

import orjson
import pika

from iothub import topology
from iothub.contract.ingest import message_id
from tests.collector.conftest import sample, telemetry
from tests.support import infra, queues
from tests.support.poll import wait_for


def test_nacked_publishes_of_the_sequencer_are_requeued_and_come_back(edge, device, make_device, amqp_url, uid):
    dev = make_device()
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    queue = f"full-{uid}"
    # A full queue with reject-publish makes RabbitMQ nack the collector's publishes.
    ch.queue_declare(queue, exclusive=True, arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
    ch.queue_bind(queue, topology.TELEMETRY_EXCHANGE, routing_key=f"*.*.{dev}.*")
    ch.queue_bind(queue, topology.TELEMETRY_EXCHANGE, routing_key=f"*.*.{topology.BUNDLE_WORD}.*")
    failures = sample("iothub_partition_batches_requeued_total", group="sequencer")
    for seq in (1, 2):  # one at a time, so that neither shares a bundle and the queue is full after them
        device.send(dev, telemetry(dev, seq))
        wait_for(lambda n=seq: ch.queue_declare(queue, passive=True).method.message_count == n,
                 what=f"message {seq} queued")
    for seq in range(3, 7):
        device.send(dev, telemetry(dev, seq))
    wait_for(lambda: sample("iothub_partition_batches_requeued_total", group="sequencer") > failures,
             what="a nacked publish")
    assert ch.queue_declare(queue, passive=True).method.message_count == 2
    got: list[dict] = []

    def take_all() -> bool:
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return {b["seq"] for b in got} == set(range(1, 7))
            for part_props, part in queues.split(props, body, [f"*.*.{dev}.*"]):
                got.append(orjson.loads(part))
                assert part_props.message_id == message_id(dev, 0, got[-1]["seq"])

    # Draining makes room; the partition redelivers what the sequencer never acked.
    wait_for(take_all, timeout=60, interval=0.2, what="all six messages after redelivery")
    assert sorted({b["msg_id"] for b in got}) == sorted(message_id(dev, 0, s) for s in range(1, 7))
    conn.close()


def test_publisher_connection_loss_withholds_acks_until_rabbitmq_is_back(start_edge, device, make_device, uid):
    vhost = f"iothub-test-acks-{uid}"
    url = infra.create_vhost(vhost)
    try:
        edge = start_edge(AMQP_URL=url)
        dev = make_device()
        device.send(dev, telemetry(dev, 1))
        wait_for(lambda: _series(url, dev) == [1], what="first message")
        infra.delete_vhost(vhost)  # the publisher's connection is closed under it
        wait_for(lambda: not edge.publisher.ready, what="publisher down")
        for seq in (2, 3, 4):
            device.send(dev, telemetry(dev, seq))  # the broker holds them for the collector's session
        wait_for(lambda: not edge.bridge.connected, what="bridge disconnected after failed publishes")
        infra.create_vhost(vhost)
        # The publisher re-declares collector.series on reconnect, before the bridge resubscribes.
        got: list[int] = []
        wait_for(lambda: got.extend(_series(url, dev)) or sorted(got) == [2, 3, 4], timeout=60, interval=0.2,
                 what="messages 2-4 redelivered and published")
    finally:
        infra.delete_vhost(vhost)


def _series(url: str, dev: str) -> list[int]:
    """Seqs of this device's messages waiting on collector.series (consumed)."""
    try:
        conn = pika.BlockingConnection(pika.URLParameters(url))
    except pika.exceptions.AMQPError:
        return []
    try:
        ch = conn.channel()
        seqs = []
        while True:
            method, props, body = ch.basic_get(topology.SERIES_QUEUE.name, auto_ack=True)
            if method is None:
                return seqs
            for _, part in queues.split(props, body):
                msg = orjson.loads(part)
                if msg["device_id"] == dev:
                    seqs.append(msg["seq"])
    except pika.exceptions.ChannelClosedByBroker:
        return []
    finally:
        if conn.is_open:
            conn.close()


def test_queued_acknowledgements_leave_in_one_write_and_publishes_stay_apart():
    from paho.mqtt.client import PUBACK, PUBLISH, PUBREC, CallbackAPIVersion

    from collector.edge.mqtt_socket import BufferedClient

    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id="join-acks")

    def packet(command: int, body: bytes) -> dict:
        return {"command": command, "mid": 1, "qos": 1, "pos": 0, "to_process": len(body), "packet": body,
                "info": None}

    publish = packet(PUBLISH | 2, b"P")
    client._out_packet.extend([packet(PUBACK, b"\x40\x02\x00\x01"), packet(PUBACK, b"\x40\x02\x00\x02"),
                               packet(PUBREC, b"\x50\x02\x00\x03"), publish, packet(PUBACK, b"\x40\x02\x00\x04")])
    client._join_acks()
    queued = list(client._out_packet)
    assert [p["packet"] for p in queued] == [b"\x40\x02\x00\x01\x40\x02\x00\x02\x50\x02\x00\x03", b"P",
                                             b"\x40\x02\x00\x04"]
    assert queued[0]["to_process"] == 12 and queued[1] is publish
