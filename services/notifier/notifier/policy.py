"""Pure decisions: who gets an event change, when to retry, which due notifications fit the worker pool."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from notifier.events import SEVERITIES, Event

_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Subscription:
    """Who wants which events, over which channel."""

    id: str
    channel: str
    target: str
    min_severity: str = "info"
    device_type: str | None = None
    device_id: str | None = None
    rule_id: str | None = None
    enabled: bool = True

    @property
    def target_key(self) -> str:
        """The key the per-target concurrency limit counts by."""
        return target_key(self.channel, self.target)


def target_key(channel: str, target: str) -> str:
    """The failure domain of a target: a webhook's scheme://host:port; the one SMTP relay for email; the log."""
    if channel == "webhook":
        parts = urlsplit(target.strip())
        return f"webhook:{parts.scheme.lower()}://{parts.netloc.lower()}" if parts.netloc else f"webhook:{target}"
    return channel


def matches(subscription: Subscription, event: Event) -> bool:
    """True when the subscription wants this event: enabled, severe enough, and every set filter equal."""
    if not subscription.enabled:
        return False
    if _RANK.get(event.severity, -1) < _RANK.get(subscription.min_severity, len(_RANK)):
        return False
    filters = ((subscription.device_type, event.device_type), (subscription.device_id, event.device_id),
               (subscription.rule_id, event.rule_id))
    return all(wanted is None or wanted == actual for wanted, actual in filters)


def select(subscriptions: Iterable[Subscription], event: Event) -> list[Subscription]:
    """The subscriptions that receive this event."""
    return [s for s in subscriptions if matches(s, event)]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, giving up after max_attempts."""

    max_attempts: int = 5
    base: float = 2.0
    cap: float = 300.0

    def ceiling(self, attempt: int) -> float:
        """Largest delay after the given (1-based) failed attempt: min(cap, base * 2^(attempt-1))."""
        return min(self.cap, self.base * 2 ** min(attempt - 1, 62))

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after a failed attempt: uniform in [0, ceiling) ("full jitter")."""
        return self.ceiling(attempt) * rand()

    def gives_up(self, attempt: int, retryable: bool) -> bool:
        """True when the notification should be marked failed after this failed attempt."""
        return not retryable or attempt >= self.max_attempts


def pick(candidates: Sequence[tuple[str, str]], busy: Mapping[str, int], per_target: int, limit: int) -> list[str]:
    """From due (id, target key) pairs in due order, the ids to start now without exceeding any target's limit."""
    counts = dict(busy)
    chosen: list[str] = []
    for notification_id, target in candidates:
        if len(chosen) >= limit:
            break
        if counts.get(target, 0) < per_target:
            counts[target] = counts.get(target, 0) + 1
            chosen.append(notification_id)
    return chosen
