"""Notification subscriptions at /api/v1/subscriptions: everyone reads, operators write; secrets are write-only."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import current_actor, error_responses, requires
from device_manager.extensions import services
from device_manager.schemas.subscriptions import (
    SubscriptionCreateSchema,
    SubscriptionListArgs,
    SubscriptionPageSchema,
    SubscriptionSchema,
    SubscriptionUpdateSchema,
)
from device_manager.service.pagination import PageRequest
from device_manager.service.roles import Role

blp = Blueprint("subscriptions", __name__, url_prefix="/api/v1/subscriptions",
                description="Who is notified of which events, on which channel")


@blp.route("")
class Subscriptions(MethodView):
    """The subscription collection."""

    @requires(Role.VIEWER)
    @blp.arguments(SubscriptionListArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, SubscriptionPageSchema)
    def get(self, args):
        """List subscriptions (filter channel, min_severity, device_type, device_id, rule_id, enabled, q)."""
        req = PageRequest.from_args(args)
        return page_response(services().notifications.subscriptions_page(req), req)

    @requires(Role.OPERATOR)
    @blp.arguments(SubscriptionCreateSchema)
    @blp.response(201, SubscriptionSchema)
    def post(self, body):
        """Create a subscription (an unknown rule_id is 422)."""
        return services().notifications.subscribe(body, current_actor())


@blp.route("/<uuid:sub_id>")
class SubscriptionItem(MethodView):
    """One subscription."""

    @requires(Role.VIEWER)
    @blp.doc(responses=error_responses(r404="Subscription not found"))
    @blp.response(200, SubscriptionSchema)
    def get(self, sub_id):
        """Read a subscription (has_secret tells whether a secret is set, never its value)."""
        return services().notifications.subscription(sub_id)

    @requires(Role.OPERATOR)
    @blp.doc(responses=error_responses(r404="Subscription not found"))
    @blp.arguments(SubscriptionUpdateSchema)
    @blp.response(200, SubscriptionSchema)
    def patch(self, body, sub_id):
        """Change a subscription; channel and target are checked together after the merge."""
        return services().notifications.update_subscription(sub_id, body)

    @requires(Role.OPERATOR)
    @blp.doc(responses=error_responses(r404="Subscription not found"))
    @blp.response(204)
    def delete(self, sub_id):
        """Delete a subscription (its notifications stay, detached)."""
        services().notifications.unsubscribe(sub_id)
