"""The notifier's Prometheus metrics and the decorator that records them around the service."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge, Histogram

from notifier.events import EventChange
from notifier.service import PENDING, Accepted, Claim, Decision, Service

CHANGES = Counter("iothub_notifier_changes_total", "Event changes consumed", ["outcome"])
NOTIFICATIONS = Counter("iothub_notifier_notifications_total", "Notifications planned for matching subscriptions")
ATTEMPTS = Counter("iothub_notifier_attempts_total", "Delivery attempts by channel and outcome "
                   "(sent, retry = failed and rescheduled, failed = failed and given up)", ["channel", "outcome"])
ATTEMPT_SECONDS = Histogram("iothub_notifier_attempt_seconds", "Duration of one delivery attempt", ["channel"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
LATENCY = Histogram("iothub_notifier_delivery_latency_seconds",
                    "Event change occurred_at (or receipt) to notification sent", ["channel"],
                    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600))
PENDING_GAUGE = Gauge("iothub_notifier_pending_notifications", "Notifications waiting for (another) attempt")
IN_FLIGHT = Gauge("iothub_notifier_in_flight", "Delivery attempts running now")


def rejected(count: int = 1) -> None:
    """Count event-change messages sent to the dead-letter queue."""
    CHANGES.labels("rejected").inc(count)


def set_pending(count: int) -> None:
    """Update the pending-notifications gauge."""
    PENDING_GAUGE.set(count)


class MetricsMiddleware:
    """Service decorator: counts changes, attempts by outcome, attempt duration and delivery latency."""

    def __init__(self, inner: Service):
        self._inner = inner

    def accept(self, changes: Sequence[EventChange]) -> Accepted:
        """Count accepted and duplicate changes and planned notifications."""
        result = self._inner.accept(changes)
        CHANGES.labels("accepted").inc(result.changes)
        CHANGES.labels("duplicate").inc(result.duplicates)
        NOTIFICATIONS.inc(result.notifications)
        return result

    def claim(self, limit: int, busy: Mapping[str, int]) -> list[Claim]:
        """Pass through."""
        return self._inner.claim(limit, busy)

    def deliver(self, claim: Claim) -> Decision:
        """Time the attempt and count its outcome; observe latency when sent."""
        started = time.monotonic()
        decision = self._inner.deliver(claim)
        ATTEMPT_SECONDS.labels(claim.channel).observe(time.monotonic() - started)
        ATTEMPTS.labels(claim.channel, "retry" if decision.status == PENDING else decision.status).inc()
        if decision.outcome.ok:
            LATENCY.labels(claim.channel).observe(max(0.0, (datetime.now(UTC) - claim.occurred_at).total_seconds()))
        return decision

    def pending(self) -> int:
        """Pass through."""
        return self._inner.pending()
