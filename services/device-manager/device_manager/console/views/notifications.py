"""Notification subscriptions (who hears of which events) and every notification with its delivery attempts."""

from __future__ import annotations

from flask import Blueprint, render_template

from device_manager.console import data, forms
from device_manager.console.blueprint import actor, requires
from device_manager.schemas.notifications import NotificationListArgs
from device_manager.schemas.rules import SEVERITIES
from device_manager.schemas.subscriptions import SubscriptionListArgs
from device_manager.service.roles import Role

bp = Blueprint("notifications", __name__)
CHANNELS = ("log", "webhook", "email")


@bp.route("/notifications")
@requires(Role.VIEWER)
def index():
    """Subscriptions and the newest notifications."""
    subs_req = data.page_request(SubscriptionListArgs, {"page_size": 100})
    args = forms.query(NotificationListArgs)
    args.setdefault("page_size", 25)
    req = data.page_request(NotificationListArgs, args)
    page = data.notifications(req)
    return forms.list_page("console/notifications.html", "console/_notifications_table.html", "notifications-table",
                           page, req, subs=data.subscriptions(subs_req).items, channels=CHANNELS, severities=SEVERITIES)


@bp.route("/notifications/<uuid:notification_id>")
@requires(Role.VIEWER)
def attempts(notification_id):
    """One notification's delivery attempts."""
    return render_template("console/_attempts.html", n=data.notification(notification_id))


@bp.route("/subscriptions", methods=["POST"])
@requires(Role.OPERATOR)
def create():
    """Create a subscription."""
    values = forms.fields("name", "channel", "target", "secret", "min_severity", "device_type", "device_id")
    values["enabled"] = True
    created = data.create_subscription(values, actor())
    return forms.done(f"Subscription {created['name']} created", "console/_subscription_row.html", s=created)


@bp.route("/subscriptions/<uuid:sub_id>/enabled", methods=["POST"])
@requires(Role.OPERATOR)
def set_enabled(sub_id):
    """Enable or disable a subscription."""
    changed = data.set_subscription_enabled(sub_id, forms.checked("enabled"))
    return forms.done(f"Subscription {'enabled' if changed['enabled'] else 'disabled'}",
                      "console/_subscription_row.html", s=changed)
