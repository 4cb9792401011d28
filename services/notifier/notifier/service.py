"""Notification domain: store who must be notified of each event change, then deliver attempt by attempt."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from iothub.errors import Unavailable
from notifier.events import EventChange
from notifier.policy import RetryPolicy, Subscription, pick, select

SENT, PENDING, FAILED = "sent", "pending", "failed"


@dataclass(frozen=True)
class Claim:
    """One delivery attempt the scheduler has claimed (and leased) in the store."""

    notification_id: str
    attempt: int
    channel: str
    target: str
    target_key: str  # what the per-target limit counts by (policy.target_key)
    secret: str | None
    subscription_exists: bool
    change: EventChange
    occurred_at: datetime


@dataclass(frozen=True)
class Outcome:
    """What a channel reports for one attempt."""

    ok: bool
    response_code: int | None = None
    error: str | None = None
    retryable: bool = True


@dataclass(frozen=True)
class Decision:
    """What became of the notification after an attempt."""

    status: str  # sent | pending (retry later) | failed (gave up)
    outcome: Outcome
    retry_in: float | None = None


@dataclass(frozen=True)
class Accepted:
    """Result of storing a batch of event changes."""

    changes: int
    duplicates: int
    notifications: int


class Notifier(Protocol):
    """One channel (log, webhook, email): performs a single attempt and never raises."""

    def send(self, claim: Claim) -> Outcome:
        """Deliver the claimed notification once."""
        ...


class Repository(Protocol):
    """Durable store of subscriptions, notifications and their attempts."""

    def subscriptions(self) -> list[Subscription]:
        """Every enabled subscription."""
        ...

    def store(self, planned: Sequence[tuple[EventChange, Sequence[Subscription]]]) -> Accepted:
        """In one transaction, store each new change and a pending notification per subscription."""
        ...

    def claim_due(self, limit: int, exclude: Sequence[str], lease_seconds: float,
                  choose: Callable[[list[tuple[str, str]]], list[str]]) -> list[Claim]:
        """Lease due pending notifications (those `choose` keeps) and open an attempt for each."""
        ...

    def record(self, claim: Claim, decision: Decision) -> None:
        """Close the attempt and move the notification to sent, failed or its next attempt time."""
        ...

    def pending_count(self) -> int:
        """Notifications not yet sent or failed."""
        ...


class Service(Protocol):
    """The notifier's use cases, as the consumer, the scheduler and the decorators see them."""

    def accept(self, changes: Sequence[EventChange]) -> Accepted:
        """Durably plan notifications for a batch of event changes."""
        ...

    def claim(self, limit: int, busy: Mapping[str, int]) -> list[Claim]:
        """Start up to `limit` due attempts, respecting the per-target limit given in-flight counts per target key."""
        ...

    def deliver(self, claim: Claim) -> Decision:
        """Run one attempt and record it."""
        ...

    def pending(self) -> int:
        """How many notifications are still pending."""
        ...


class NotificationService:
    """The implementation of Service over a Repository and one Notifier per channel."""

    def __init__(self, repository: Repository, notifiers: Mapping[str, Notifier], policy: RetryPolicy, *,
                 per_target_limit: int = 2, lease_seconds: float = 60.0,
                 rand: Callable[[], float] = random.random, sleep: Callable[[float], None] = time.sleep):
        self._repo = repository
        self._notifiers = notifiers
        self._policy = policy
        self._per_target = per_target_limit
        self._lease = lease_seconds
        self._rand = rand
        self._sleep = sleep

    def accept(self, changes: Sequence[EventChange]) -> Accepted:
        """Match every change against the enabled subscriptions and store the plan before the ack."""
        if not changes:
            return Accepted(0, 0, 0)
        subscriptions = self._repo.subscriptions()
        return self._repo.store([(change, select(subscriptions, change.event)) for change in changes])

    def claim(self, limit: int, busy: Mapping[str, int]) -> list[Claim]:
        """Claim due notifications, skipping targets already at their concurrency limit."""
        if limit <= 0:
            return []
        saturated = [key for key, count in busy.items() if count >= self._per_target]
        return self._repo.claim_due(limit, saturated, self._lease,
                                    lambda candidates: pick(candidates, busy, self._per_target, limit))

    def deliver(self, claim: Claim) -> Decision:
        """Send once through the claim's channel, decide sent / retry / failed, and record it."""
        outcome = self._send(claim)
        if outcome.ok:
            decision = Decision(SENT, outcome)
        elif self._policy.gives_up(claim.attempt, outcome.retryable):
            decision = Decision(FAILED, outcome)
        else:
            decision = Decision(PENDING, outcome, self._policy.delay(claim.attempt, self._rand))
        self._record(claim, decision)
        return decision

    def pending(self) -> int:
        """How many notifications are still pending."""
        return self._repo.pending_count()

    def _record(self, claim: Claim, decision: Decision) -> None:
        # The attempt has happened: retry recording it (within the lease) rather than let the lease re-send it.
        delay, waited = 0.5, 0.0
        while True:
            try:
                self._repo.record(claim, decision)
                return
            except Unavailable:
                if waited + delay > self._lease / 2:
                    raise
                self._sleep(delay)
                waited += delay
                delay = min(delay * 2, 5.0)

    def _send(self, claim: Claim) -> Outcome:
        if not claim.subscription_exists:
            return Outcome(False, error="subscription deleted", retryable=False)
        notifier = self._notifiers.get(claim.channel)
        if notifier is None:
            return Outcome(False, error=f"channel {claim.channel!r} is not configured", retryable=False)
        try:
            return notifier.send(claim)
        except Exception as exc:  # a channel bug must count as an attempt, not loop on the lease forever
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:500])
