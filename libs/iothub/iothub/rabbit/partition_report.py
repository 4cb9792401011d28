"""Partition figures for alerts: each partition queue's backlog and active consumers, exported by the replicas
that consume the partitions and by the processes that publish into them."""

from __future__ import annotations

import contextlib
import threading
import time

import pika
from prometheus_client import Gauge

from iothub.rabbit.supervise import keep_running, parameters

BACKLOG = Gauge("iothub_partition_backlog", "Messages ready in a partition queue", ["queue"])
OWNED = Gauge("iothub_partition_consumers", "Active consumers of a partition queue (0: nobody owns it)", ["queue"])


def report(channel, queues: list[str]) -> None:
    """Export each partition queue's backlog and active consumer count (0: nobody owns it)."""
    for name in queues:
        ok = channel.queue_declare(name, passive=True).method
        BACKLOG.labels(name).set(ok.message_count)
        OWNED.labels(name).set(ok.consumer_count)


def forget_report(queues: list[str]) -> None:
    """Stop exporting figures this process can no longer read (it lost RabbitMQ): stale ones would mislead."""
    for name in queues:
        for gauge in (BACKLOG, OWNED):
            with contextlib.suppress(KeyError):
                gauge.remove(name)


class PartitionReporter:
    """Exports the partitions' figures from a process that publishes into them (the edge): it knows its own
    partition count, so a partition no sequencer subscribes to (a mismatched INGEST_PARTITIONS) shows 0 owners."""

    def __init__(self, url: str, queues: list[str], *, interval: float = 10.0, name: str = "partition-report"):
        self._params = parameters(url, name)
        self._queues = queues
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> PartitionReporter:
        """Report on a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reporting."""
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        keep_running(self._session, self._stop, what="partition report",
                     on_lost=lambda: forget_report(self._queues), max_backoff=self._interval)

    def _session(self) -> None:
        conn = pika.BlockingConnection(self._params)
        try:
            channel = conn.channel()
            while not self._stop.is_set():
                report(channel, self._queues)
                # Short slices that service heartbeats, so stop() returns at once rather than after an interval.
                deadline = time.monotonic() + self._interval
                while not self._stop.is_set() and time.monotonic() < deadline:
                    conn.process_data_events(time_limit=0.2)
        finally:
            if conn.is_open:
                conn.close()
