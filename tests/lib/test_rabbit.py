"""Publisher confirms and the consumer policy against the real RabbitMQ."""

from __future__ import annotations

import threading

import pika
import pytest

from iothub import topology
from iothub.errors import Rejected, Unavailable
from iothub.rabbit import BatchConsumer, ConfirmPublisher, ConsumerConfig
from tests.support.poll import wait_for


@pytest.fixture
def publisher(amqp_url):
    pub = ConfirmPublisher(amqp_url, name="test-publisher").start()
    yield pub
    pub.stop()


def _purge(amqp_url, *queues):
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    topology.declare(ch)
    for q in queues:
        ch.queue_purge(q)
    conn.close()


def test_confirms_are_pipelined_and_all_settle_true(publisher, amqp_url):
    _purge(amqp_url, topology.SERIES_QUEUE.name)
    results = []
    lock = threading.Lock()

    def settle(ok):
        with lock:
            results.append(ok)

    for i in range(2000):
        publisher.publish(topology.TELEMETRY_EXCHANGE, f"telemetry.t.d{i % 5}", b"{}", settle)
    wait_for(lambda: len(results) == 2000, timeout=30, what="2000 confirms")
    assert all(results)


def _run(consumer):
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    return thread


def test_consumer_policy_acks_retries_and_dead_letters(publisher, amqp_url):
    queue = topology.SERIES_QUEUE.name
    _purge(amqp_url, queue, topology.DEAD_LETTER_QUEUE.name)
    stored: list[bytes] = []
    outage = {"left": 2}

    def handler(batch):
        if outage["left"]:
            outage["left"] -= 1
            raise Unavailable("store down")
        failures = {}
        for i, d in enumerate(batch):
            if d.body == b"bad":
                failures[i] = Rejected("bad_payload", "cannot parse")
            elif d.body == b"boom":
                raise ValueError("poison")
            else:
                stored.append(d.body)
        return failures

    for body in (b"a", b"bad", b"boom", b"b"):
        assert publisher.publish_wait(topology.TELEMETRY_EXCHANGE, "telemetry.t.d", body, message_id=body.decode())
    consumer = BatchConsumer(amqp_url, ConsumerConfig(queue, batch_size=10, batch_wait=0.05, max_attempts=3),
                             handler)
    thread = _run(consumer)
    try:
        # At-least-once: isolating the poison message re-runs "a", so compare as a set.
        wait_for(lambda: set(stored) == {b"a", b"b"}, timeout=30, what="good messages stored")
        conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        ch = conn.channel()

        def dead_letters():
            reasons = {}
            while True:
                method, props, body = ch.basic_get(topology.DEAD_LETTER_QUEUE.name, auto_ack=True)
                if method is None:
                    return reasons
                reasons[body] = props.headers[topology.DL_REASON]

        seen = {}
        wait_for(lambda: seen.update(dead_letters()) or len(seen) == 2, timeout=30, what="two dead letters")
        conn.close()
        assert seen == {b"bad": "bad_payload", b"boom": "handler_error"}
    finally:
        consumer.stop()
        thread.join(10)
