"""Bundles: the publisher packs bursts into one AMQP message; the consumer policy settles them part by part."""

from __future__ import annotations

import threading

import pika
import pytest

from iothub import topology
from iothub.errors import Rejected
from iothub.rabbit import BatchConsumer, ConfirmPublisher, ConsumerConfig, bundle
from tests.support.poll import wait_for

SERIES = topology.SERIES_QUEUE.name
BUNDLE_KEY = topology.bundle_key("telemetry", "t", 0)


@pytest.mark.parametrize(("pattern", "key", "expected"), [
    ("#", "telemetry.t.d1", True),
    ("telemetry.#", "telemetry.t.d1", True),
    ("telemetry.#", "hello.t.d1", False),
    ("*.*.d1", "telemetry.t.d1", True),
    ("*.*.d1", "telemetry.t.d10", False),
    ("a.#.c", "a.c", True),
    ("a.#.c", "a.b.b.c", True),
    ("a.*", "a.b.c", False),
])
def test_wanted_follows_topic_exchange_matching(pattern, key, expected):
    assert bundle.wanted(key, [pattern]) is expected


def test_pack_and_unpack_round_trip_and_bad_headers_are_refused():
    parts = [bundle.Part(b'{"n":1}', "telemetry.t.a", "id-1"), bundle.Part(b'{"n":2}', "hello.t.b", None)]
    body, headers = bundle.pack(parts)
    assert bundle.unpack(body, headers) == parts
    with pytest.raises(ValueError, match="inconsistent"):
        bundle.unpack(body + b"\n{}", headers)
    with pytest.raises(ValueError):
        bundle.unpack(body, {})


def _channel(amqp_url):
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = conn.channel()
    topology.declare(channel)
    return conn, channel


def _consume(amqp_url, handler):
    consumer = BatchConsumer(amqp_url, ConsumerConfig(SERIES, batch_size=500, batch_wait=0.05, max_attempts=2),
                             handler)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    return consumer, thread


def _dead_letter_one(amqp_url, channel, body, headers, handler):
    """Publish one bundle to collector.series, consume until it is acked and one letter is parked; return it."""
    channel.confirm_delivery()
    channel.basic_publish(topology.TELEMETRY_EXCHANGE, BUNDLE_KEY, body,
                          pika.BasicProperties(delivery_mode=2, content_type=bundle.CONTENT_TYPE, headers=headers))
    consumer, thread = _consume(amqp_url, handler)
    try:
        wait_for(lambda: channel.queue_declare(SERIES, passive=True).method.message_count == 0
                 and channel.queue_declare(topology.DEAD_LETTER_QUEUE.name, passive=True).method.message_count == 1,
                 timeout=30, what="the bundle acked and one letter parked")
    finally:
        consumer.stop()
        thread.join(10)
    _, props, dead = channel.basic_get(topology.DEAD_LETTER_QUEUE.name, auto_ack=True)
    return props, dead


def test_a_burst_travels_in_fewer_amqp_messages_and_every_part_arrives_once(amqp_url, uid):
    conn, channel = _channel(amqp_url)
    channel.queue_purge(SERIES)
    publisher = ConfirmPublisher(amqp_url, name="test-bundles", max_unconfirmed=1).start()
    confirms: list[bool] = []
    lock = threading.Lock()

    def settle(ok):
        with lock:
            confirms.append(ok)

    sent = [(f"telemetry.t.b{uid}-{i % 7}", f"{uid}-{i}") for i in range(300)]
    try:
        for key, mid in sent:
            publisher.publish(topology.TELEMETRY_EXCHANGE, key, f'{{"id":"{mid}"}}'.encode(), settle,
                              message_id=mid, bundle=BUNDLE_KEY)
        wait_for(lambda: len(confirms) == 300, timeout=30, what="300 confirms")
    finally:
        publisher.stop()
    assert all(confirms)
    depth = channel.queue_declare(SERIES, passive=True).method.message_count
    assert 1 <= depth < 300, "a window of one confirm should have bundled the burst"

    got: list[tuple[str, str, bytes]] = []
    consumer, thread = _consume(amqp_url, lambda batch: got.extend((d.routing_key, d.message_id, d.body)
                                                                   for d in batch))
    try:
        wait_for(lambda: len(got) >= 300 and channel.queue_declare(SERIES, passive=True).method.message_count == 0,
                 timeout=30, what="every part consumed and the bundles acked")
    finally:
        consumer.stop()
        thread.join(10)
        conn.close()
    assert [(key, mid) for key, mid, _ in got] == sent  # each key's order kept; here the burst's order too
    assert all(body == f'{{"id":"{mid}"}}'.encode() for _, mid, body in got)


def test_a_rejected_part_is_dead_lettered_alone_and_unselected_parts_are_skipped(amqp_url, uid):
    conn, channel = _channel(amqp_url)
    channel.queue_purge(SERIES)
    channel.queue_purge(topology.DEAD_LETTER_QUEUE.name)
    parts = [bundle.Part(b'"good-1"', f"telemetry.t.{uid}", f"{uid}-1"),
             bundle.Part(b'"bad"', f"telemetry.t.{uid}", f"{uid}-2"),
             bundle.Part(b'"hello"', f"hello.t.{uid}", f"{uid}-3"),  # collector.series binds telemetry.# only
             bundle.Part(b'"good-2"', f"telemetry.t.{uid}", f"{uid}-4")]
    body, headers = bundle.pack(parts)
    seen: list[bytes] = []

    def handler(batch):
        seen.extend(d.body for d in batch)
        return {i: Rejected("bad_payload", "cannot parse") for i, d in enumerate(batch) if d.body == b'"bad"'}

    props, dead = _dead_letter_one(amqp_url, channel, body, headers, handler)
    conn.close()
    assert sorted(seen) == [b'"bad"', b'"good-1"', b'"good-2"']
    assert dead == b'"bad"'
    assert props.message_id == f"{uid}-2"
    assert props.headers[topology.DL_REASON] == "bad_payload"
    assert props.headers[topology.DL_ROUTING_KEY] == f"telemetry.t.{uid}"


def test_an_unreadable_bundle_is_dead_lettered_whole_and_counted(amqp_url, uid):
    from prometheus_client import REGISTRY

    conn, channel = _channel(amqp_url)
    channel.queue_purge(SERIES)
    channel.queue_purge(topology.DEAD_LETTER_QUEUE.name)
    counted = REGISTRY.get_sample_value("iothub_consumer_messages_total",
                                        {"queue": SERIES, "outcome": "dead_lettered"}) or 0.0
    body = b'"one"\n"two"'
    headers = {bundle.IDS_HEADER: [f"{uid}-1"], bundle.KEYS_HEADER: [f"telemetry.t.{uid}"]}  # two lines, one id
    seen: list[bytes] = []
    props, dead = _dead_letter_one(amqp_url, channel, body, headers, lambda batch: seen.extend(d.body for d in batch))
    conn.close()
    assert seen == [] and dead == body
    assert props.headers[topology.DL_REASON] == "bad_bundle"
    assert REGISTRY.get_sample_value("iothub_consumer_messages_total",
                                     {"queue": SERIES, "outcome": "dead_lettered"}) == counted + 1
