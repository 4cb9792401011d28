"""Composition root: `python -m notifier`."""

from __future__ import annotations

import logging
import signal
import threading

from iothub import health, logs
from iothub.settings import load_or_exit
from notifier import settings as settings_module
from notifier.app import App

log = logging.getLogger("notifier")


def main() -> int:
    """Load settings, start the notifier and the health endpoints, and run until SIGTERM/SIGINT."""
    settings = load_or_exit("notifier", settings_module.load)
    logs.configure("notifier", settings.log_level)
    app = App(settings)
    health.serve(settings.metrics_port, {"rabbitmq": app.consumer.connected.is_set, "postgres": app.db.ping,
                                         "scheduler": app.dispatcher.healthy.is_set})
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    app.start()
    log.info("notifier started", extra={"metrics_port": settings.metrics_port,
                                        "channels": app.channels})
    stopping.wait()
    app.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
