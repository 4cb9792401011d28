"""The collector's writers: raw archive, series (PostgreSQL/InfluxDB), device state and dead-letter recorder."""

from collector.writers.runner import WriterHandle, start_writer, start_writers

__all__ = ["WriterHandle", "start_writer", "start_writers"]
