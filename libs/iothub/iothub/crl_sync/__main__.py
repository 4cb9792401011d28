"""`python -m iothub.crl_sync`: run the CRL sync until SIGTERM/SIGINT (settings: iothub.crl_sync.settings)."""

from __future__ import annotations

import logging
import signal
import threading

from iothub import health, logs
from iothub.crl_sync import settings as settings_module
from iothub.crl_sync.loop import CrlSync
from iothub.settings import load_or_exit

log = logging.getLogger("iothub.crl_sync")


def main() -> int:
    """Load settings, poll until told to stop."""
    settings = load_or_exit("crl-sync", settings_module.load)
    logs.configure("crl-sync", settings.log_level)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    syncer = CrlSync(settings)
    if settings.health_port:
        health.serve(settings.health_port, {"synced": syncer.synced.is_set})
    log.info("CRL sync started", extra={"url": settings.url, "crl_file": settings.crl_file,
                                        "interval_s": settings.interval_s})
    syncer.run(stop)
    log.info("CRL sync stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
