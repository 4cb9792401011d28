"""Prometheus metrics of the collector's writers (the shared BatchConsumer counts settled messages)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

BATCH_SIZE = Histogram("iothub_collector_writer_batch_size", "Messages per writer batch", ["writer"],
                       buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500))
BATCH_SECONDS = Histogram("iothub_collector_writer_batch_seconds", "Time to store one batch", ["writer"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
WRITTEN = Counter("iothub_collector_writer_written_total", "Rows, points or objects written",
                  ["writer", "kind"])
SKIPPED = Counter("iothub_collector_writer_skipped_total", "Messages acked without being stored",
                  ["writer", "reason"])
STORE_ERRORS = Counter("iothub_collector_writer_store_errors_total", "Store failures (batch retried)",
                       ["writer", "store"])
RETENTION_DROPPED = Counter("iothub_collector_writer_partitions_dropped_total",
                            "Series partitions dropped by retention")
