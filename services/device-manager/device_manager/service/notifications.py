"""Notification use cases: subscriptions (who hears of which events, on which channel) and what was sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from device_manager.service.errors import Invalid, NotFound
from device_manager.service.pagination import Page, PageRequest

# Field errors for a subscription's channel/target/secret; empty when consistent (the transport's validator).
TargetCheck = Callable[[dict[str, Any]], dict[str, Any]]


class SubscriptionStore(Protocol):
    """Where subscriptions live (secrets are written, never read back)."""

    def list(self, req: PageRequest) -> Page:
        """A filtered, sorted page."""

    def get(self, sub_id) -> dict[str, Any] | None:
        """One subscription."""

    def create(self, data: dict[str, Any], actor: str) -> dict[str, Any]:
        """Insert a subscription."""

    def update(self, sub_id, data: dict[str, Any]) -> dict[str, Any] | None:
        """Apply changes; None when absent."""

    def delete(self, sub_id) -> bool:
        """Delete; False when absent."""


class NotificationStore(Protocol):
    """Notifications the notifier wrote."""

    def list(self, req: PageRequest) -> Page:
        """A filtered, sorted page."""

    def get(self, notification_id) -> dict[str, Any] | None:
        """One notification with its attempts."""


class NotificationService:
    """Subscriptions and notifications."""

    def __init__(self, subscriptions: SubscriptionStore, notifications: NotificationStore, check_target: TargetCheck):
        self.subscriptions = subscriptions
        self.notifications = notifications
        self.check_target = check_target

    def subscriptions_page(self, req: PageRequest) -> Page:
        """A page of subscriptions."""
        return self.subscriptions.list(req)

    def subscription(self, sub_id) -> dict[str, Any]:
        """One subscription; NotFound when unknown."""
        return _found(self.subscriptions.get(sub_id))

    def subscribe(self, data: dict[str, Any], actor: str) -> dict[str, Any]:
        """Create a subscription."""
        return self.subscriptions.create(data, actor)

    def update_subscription(self, sub_id, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a subscription; channel, target and secret are checked together after the merge."""
        current = self.subscription(sub_id)
        if {"channel", "target", "secret"} & set(changes):
            merged = {**current, **changes}
            if "secret" not in changes and merged["channel"] != "webhook":
                changes = {**changes, "secret": None}  # a channel that cannot sign drops the old key
                merged["secret"] = None
            errors = self.check_target(merged)
            if errors:
                raise Invalid("Request validation failed", {"json": errors})
        return _found(self.subscriptions.update(sub_id, changes))

    def unsubscribe(self, sub_id) -> None:
        """Delete a subscription (its notifications stay, detached)."""
        if not self.subscriptions.delete(sub_id):
            raise NotFound("Subscription not found")

    def notifications_page(self, req: PageRequest) -> Page:
        """A page of notifications."""
        return self.notifications.list(req)

    def notification(self, notification_id) -> dict[str, Any]:
        """One notification with its attempts; NotFound when unknown."""
        row = self.notifications.get(notification_id)
        if row is None:
            raise NotFound("Notification not found")
        return row


def _found(row):
    if row is None:
        raise NotFound("Subscription not found")
    return row
