"""Composition root: `python -m rule_engine`."""

from __future__ import annotations

import logging
import signal
import threading

from iothub import health, logs
from iothub.settings import load_or_exit
from rule_engine import settings as settings_module
from rule_engine.app import RuleEngineApp

log = logging.getLogger("rule_engine")


def main() -> int:
    """Run until SIGTERM/SIGINT."""
    settings = load_or_exit("rule-engine", settings_module.load)
    logs.configure("rule-engine", settings.log_level)
    app = RuleEngineApp(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    app.start()
    health.serve(settings.metrics_port, {"ready": app.ready})
    log.info("rule engine started", extra={"metrics_port": settings.metrics_port})
    stop.wait()
    log.info("rule engine stopping")
    app.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
