"""Notifications at /api/v1/notifications (read-only): what was sent to whom, and every delivery attempt."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import error_responses, requires
from device_manager.extensions import services
from device_manager.schemas.notifications import (
    NotificationDetailSchema,
    NotificationListArgs,
    NotificationPageSchema,
)
from device_manager.service.pagination import PageRequest
from device_manager.service.roles import Role

blp = Blueprint("notifications", __name__, url_prefix="/api/v1/notifications",
                description="Notifications sent by the notifier, with their delivery attempts")


@blp.route("")
class Notifications(MethodView):
    """The notification collection."""

    @requires(Role.VIEWER)
    @blp.arguments(NotificationListArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, NotificationPageSchema)
    def get(self, args):
        """List notifications (filter event_id, subscription_id, status, channel, since/until on created_at)."""
        req = PageRequest.from_args(args)
        return page_response(services().notifications.notifications_page(req), req)


@blp.route("/<uuid:notification_id>")
class NotificationItem(MethodView):
    """One notification."""

    @requires(Role.VIEWER)
    @blp.doc(responses=error_responses(r404="Notification not found"))
    @blp.response(200, NotificationDetailSchema)
    def get(self, notification_id):
        """Read a notification with its attempts."""
        return services().notifications.notification(notification_id)
