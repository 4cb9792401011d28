"""Composition root: `python -m simulator [run|provision] [flags]`."""

from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
import time

from iothub import health, logs
from iothub.settings import SettingsError
from simulator import settings as settings_module
from simulator.fleet import Fleet
from simulator.ledger import CsvLedger
from simulator.mqtt import MqttSink
from simulator.provision import provision
from simulator.settings import Settings

log = logging.getLogger("simulator")


def run(s: Settings) -> int:
    """Connect, drive the fleet until stopped, then publish offline statuses and disconnect."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if s.connection_mode == "per-device" and s.devices > 500:
        log.warning("per-device mode runs a network thread per device; use shared mode for large fleets")
    ledger = CsvLedger(s.ledger) if s.ledger else None
    fleet_ids = [s.device_id(s.start_index + i) for i in range(s.devices)]
    inbox: queue.Queue = queue.Queue()  # commands from paho's threads to the fleet's thread
    sink = MqttSink(s, fleet_ids, inbox)
    fleet = Fleet(s, sink, ledger, inbox=inbox)
    if s.metrics_port > 0:
        from simulator import metrics

        metrics.register(fleet, sink)
        health.serve(s.metrics_port, {"mqtt": sink.connected})
    log.info("connecting", extra={"devices": s.devices, "mode": s.connection_mode, "connections": len(sink.conns),
                                  "brokers": [f"{h}:{p}" for h, p in s.brokers], "profile": s.profile,
                                  "send_interval_s": s.send_interval_s})
    started = time.monotonic()
    try:
        sink.start(s)
        fleet.run(stop)
        fleet.shutdown()
    except ConnectionError as exc:
        log.error("mqtt unavailable", extra={"error": str(exc)})
        return 1
    finally:
        sink.close()
        if ledger is not None:
            ledger.close()
    elapsed = time.monotonic() - started
    log.info("stopped", extra={"published": dict(fleet.published), "faults": dict(fleet.faults),
                               "errors": {**fleet.errors, **sink.errors}, "acked": sink.acked,
                               "seconds": round(elapsed, 1), "rate": round(fleet.total_published / elapsed, 1)})
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    try:
        s = settings_module.load(argv)
    except SettingsError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    logs.configure("simulator", s.log_level)
    if s.command == "provision":
        started = time.monotonic()
        inserted = provision(s)
        log.info("provisioned", extra={"devices": s.devices, "inserted": inserted,
                                       "seconds": round(time.monotonic() - started, 2)})
        return 0
    return run(s)


if __name__ == "__main__":
    sys.exit(main())
