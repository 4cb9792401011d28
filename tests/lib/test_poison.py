"""Poison messages cannot loop: the delivery count lives in the quorum queue, so restarts do not reset it."""

from __future__ import annotations

import threading

import orjson
import pika
import pytest

from collector.writers.dead_letters import to_dead_letter
from iothub import topology
from iothub.rabbit import BatchConsumer, ConsumerConfig
from iothub.rabbit.consumer import Delivery
from tests.support import infra
from tests.support.poll import wait_for

QUEUE = topology.SERIES_QUEUE.name
DLQ = topology.DEAD_LETTER_QUEUE.name


@pytest.fixture
def vhost_url(uid):
    """A private vhost with the topology declared, so no other test's consumer takes the poison."""
    name = f"iothub-test-poison-{uid}"
    url = infra.create_vhost(name)
    conn = pika.BlockingConnection(pika.URLParameters(url))
    topology.declare(conn.channel())
    conn.close()
    yield url
    infra.delete_vhost(name)


def _publish(url: str, body: bytes, message_id: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish(topology.TELEMETRY_EXCHANGE, "telemetry.t.poison", body,
                     pika.BasicProperties(delivery_mode=2, message_id=message_id))
    conn.close()


def _take(url: str, queue: str):
    """One message from the queue (None when empty), without acking it: the connection just goes away."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    method, props, body = conn.channel().basic_get(queue)
    conn.close()  # like a consumer killed before its ack
    return None if method is None else (props, body)


def test_a_message_whose_consumer_dies_each_time_is_dead_lettered_by_the_broker(vhost_url):
    _publish(vhost_url, b'{"poison": 1}', "poison-1")
    deliveries = []
    while (got := _take(vhost_url, QUEUE)) is not None:
        deliveries.append((got[0].headers or {}).get("x-delivery-count", 0))
        assert len(deliveries) <= topology.DELIVERY_LIMIT + 1, "the broker kept redelivering past its limit"
    assert deliveries == list(range(topology.DELIVERY_LIMIT + 1))
    conn = pika.BlockingConnection(pika.URLParameters(vhost_url))
    method, props, body = conn.channel().basic_get(DLQ, auto_ack=True)
    conn.close()
    assert method is not None and body == b'{"poison": 1}'
    letter = to_dead_letter(Delivery(body, method.routing_key, method.exchange, props.headers, props.message_id,
                                     method.redelivered))
    assert (letter.message_id, letter.reason, letter.source, letter.exchange, letter.routing_key) == (
        "poison-1", "delivery_limit", QUEUE, topology.TELEMETRY_EXCHANGE, "telemetry.t.poison")


def test_a_failing_message_is_dead_lettered_after_max_attempts_also_across_consumer_restarts(vhost_url):
    _publish(vhost_url, orjson.dumps({"poison": 2}), "poison-2")
    calls: list[int] = []
    config = ConsumerConfig(QUEUE, batch_size=10, max_attempts=3)
    conn = pika.BlockingConnection(pika.URLParameters(vhost_url))
    ch = conn.channel()
    parked = None
    for restart in range(5):  # the process "restarts" after every failure: a fresh consumer's own count is zero
        holder: list[BatchConsumer] = []

        def fail(batch, restart=restart, holder=holder):
            calls.append(restart)
            holder[0].stop()
            raise RuntimeError("poison")

        consumer = BatchConsumer(vhost_url, config, fail, name="poison-test")
        holder.append(consumer)
        thread = threading.Thread(target=consumer.run, daemon=True)
        thread.start()
        wait_for(lambda n=restart: len(calls) > n, timeout=20, what=f"delivery {restart + 1}")
        thread.join(20)
        parked = ch.basic_get(DLQ, auto_ack=True)
        if parked[0] is not None:
            break
    # One failure per consumer instance, yet it is parked by the third delivery at the latest (the stopping
    # consumer may get the requeued message once more before it closes, which the broker counts too).
    assert parked is not None and parked[0] is not None, f"not dead-lettered after {len(calls)} failures"
    assert 2 <= len(calls) <= config.max_attempts and calls == list(range(len(calls)))
    headers = parked[1].headers
    assert headers[topology.DL_REASON] == "handler_error" and "times" in headers[topology.DL_DETAIL]
    assert ch.queue_declare(QUEUE, passive=True).method.message_count == 0
    conn.close()
