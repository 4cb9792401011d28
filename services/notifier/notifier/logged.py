"""The logging decorator around the service: one structured line per batch and per attempt."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from notifier.events import EventChange
from notifier.service import FAILED, SENT, Accepted, Claim, Decision, Service

log = logging.getLogger("notifier")


class LoggingMiddleware:
    """Service decorator that logs what the service did, never the secrets it used."""

    def __init__(self, inner: Service):
        self._inner = inner

    def accept(self, changes: Sequence[EventChange]) -> Accepted:
        """Log every consumed change and the batch result."""
        result = self._inner.accept(changes)
        for change in changes:
            log.info("event change", extra={"change_id": change.change_id, "change": change.change,
                                            "event_id": change.event.id, "device_id": change.event.device_id,
                                            "severity": change.event.severity})
        log.info("event changes stored", extra={"changes": result.changes, "duplicates": result.duplicates,
                                                "notifications": result.notifications})
        return result

    def claim(self, limit: int, busy: Mapping[str, int]) -> list[Claim]:
        """Pass through (claims are logged with their attempt)."""
        return self._inner.claim(limit, busy)

    def deliver(self, claim: Claim) -> Decision:
        """Log the attempt's outcome: info when sent, warning on retry, error when given up."""
        decision = self._inner.deliver(claim)
        level = {SENT: logging.INFO, FAILED: logging.ERROR}.get(decision.status, logging.WARNING)
        log.log(level, f"notification {decision.status}", extra={
            "notification_id": claim.notification_id, "attempt": claim.attempt, "channel": claim.channel,
            "target": claim.target if claim.channel != "webhook" else claim.target.split("?")[0],
            "event_id": claim.change.event.id, "change_id": claim.change.change_id,
            "response_code": decision.outcome.response_code, "error": decision.outcome.error,
            "retry_in": decision.retry_in})
        return decision

    def pending(self) -> int:
        """Pass through."""
        return self._inner.pending()
