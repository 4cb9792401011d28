"""Logging decorator around the service: one line per event change, warnings on slow batches."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from rule_engine.changes import Changes
from rule_engine.model import Input

log = logging.getLogger("rule_engine")


class LoggingMiddleware:
    """Wraps the service: same methods, plus structured logs."""

    def __init__(self, service, slow_s: float = 2.0):
        self._service = service
        self._slow_s = slow_s

    def __getattr__(self, name):
        return getattr(self._service, name)

    def handle(self, inputs: Sequence[Input]) -> Changes:
        """Evaluate a batch and log its event changes."""
        return self._logged("batch", lambda: self._service.handle(inputs), len(inputs))

    def sweep(self, partition: int) -> Changes:
        """Run a sweep of a partition and log its event changes."""
        return self._logged("sweep", lambda: self._service.sweep(partition), 0)

    def _logged(self, what: str, call, size: int) -> Changes:
        started = time.perf_counter()
        try:
            changes = call()
        except Exception as exc:
            log.warning(f"{what} failed", extra={"error": str(exc), "inputs": size})
            raise
        elapsed = time.perf_counter() - started
        for out in changes.outbox:
            event = out.payload["event"]
            log.info("event %s", out.payload["change"], extra={
                "event_id": event["id"], "rule_id": event["rule_id"], "device_id": event["device_id"],
                "severity": event["severity"], "count": event["count"], "change_id": out.message_id})
        if elapsed > self._slow_s:
            log.warning(f"slow {what}", extra={"seconds": round(elapsed, 3), "inputs": size})
        return changes
