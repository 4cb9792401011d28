"""Composition root: `python -m collector` runs the ingest edge and the writers until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from collector import settings as settings_module
from collector.app import IngestEdge
from collector.writers import start_writers
from iothub import health, logs
from iothub.db import Database

log = logging.getLogger("collector")


def main() -> int:
    """Run until a termination signal, then stop gracefully."""
    settings = settings_module.load()
    # The MQTT and RabbitMQ I/O threads hand the GIL to each other several times per message; with the default
    # 5 ms switch interval each handoff can stall behind a busy thread. Noisy trials looked faster with 0.5 ms;
    # not proven by a clean A/B run yet (docs/benchmarks.md).
    sys.setswitchinterval(0.0005)
    logs.configure("collector", settings.log_level)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    db = Database(settings.database_url, maxconn=8, application_name="collector")
    edge = IngestEdge(settings, db)
    server = health.serve(settings.metrics_port, checks=edge.checks())
    edge.start(timeout=60)
    writers = start_writers(settings, db, stop)
    log.info("collector started", extra={"writers": list(settings.writers), "metrics_port": server.server_port})
    stop.wait()
    log.info("collector stopping")
    edge.stop()
    for writer in writers:
        writer.stop()
    for writer in writers:  # let in-flight batches finish and ack rather than be redelivered later
        writer.join(10)
    server.shutdown()
    db.close()
    log.info("collector stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
