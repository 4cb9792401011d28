"""Broker helpers for tests: purge the run's queues, read what landed in one."""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace

import pika

from iothub import topology
from iothub.rabbit import bundle


def purge_all(amqp_url: str) -> None:
    """Declare the topology and empty every queue of the vhost."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        topology.declare(channel)
        for queue in topology.QUEUES:
            channel.queue_purge(queue.name)
    finally:
        conn.close()


def split(props, body: bytes, keys: Iterable[str] | None = None) -> list[tuple]:
    """A delivery as the (properties, body) messages it carries: itself, or the bundle parts `keys` select."""
    if props.content_type != bundle.CONTENT_TYPE:
        return [(props, body)]
    return [(SimpleNamespace(message_id=p.message_id, delivery_mode=props.delivery_mode, headers={},
                             content_type="application/json", routing_key=p.routing_key), p.body)
            for p in bundle.unpack(body, props.headers) if keys is None or bundle.wanted(p.routing_key, keys)]
