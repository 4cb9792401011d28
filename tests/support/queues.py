"""Broker helpers for tests: purge the run's queues, read what landed in one."""

from __future__ import annotations

import pika

from iothub import topology


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
