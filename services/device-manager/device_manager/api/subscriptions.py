"""Notification subscriptions at /api/v1/subscriptions: everyone reads, operators write; secrets are write-only."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import current_actor, error_responses, requires
from device_manager.extensions import get_db
from device_manager.repositories.subscriptions import SubscriptionRepository
from device_manager.schemas.subscriptions import (
    SubscriptionCreateSchema,
    SubscriptionListArgs,
    SubscriptionPageSchema,
    SubscriptionSchema,
    SubscriptionUpdateSchema,
    check_target,
)
from device_manager.service.errors import Invalid, NotFound
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
        return page_response(SubscriptionRepository(get_db()).list(req), req)

    @requires(Role.OPERATOR)
    @blp.arguments(SubscriptionCreateSchema)
    @blp.response(201, SubscriptionSchema)
    def post(self, body):
        """Create a subscription (an unknown rule_id is 422)."""
        return SubscriptionRepository(get_db()).create(body, current_actor())


@blp.route("/<uuid:sub_id>")
class SubscriptionItem(MethodView):
    """One subscription."""

    @requires(Role.VIEWER)
    @blp.doc(responses=error_responses(r404="Subscription not found"))
    @blp.response(200, SubscriptionSchema)
    def get(self, sub_id):
        """Read a subscription (has_secret tells whether a secret is set, never its value)."""
        return _found(SubscriptionRepository(get_db()).get(sub_id))

    @requires(Role.OPERATOR)
    @blp.doc(responses=error_responses(r404="Subscription not found"))
    @blp.arguments(SubscriptionUpdateSchema)
    @blp.response(200, SubscriptionSchema)
    def patch(self, body, sub_id):
        """Change a subscription; channel and target are checked together after the merge."""
        repo = SubscriptionRepository(get_db())
        current = _found(repo.get(sub_id))
        if {"channel", "target", "secret"} & set(body):
            merged = {**current, **body}
            if "secret" not in body and merged["channel"] != "webhook":
                body = {**body, "secret": None}  # a channel that cannot sign drops the old key
                merged["secret"] = None
            try:
                check_target(merged)
            except ma.ValidationError as exc:
                raise Invalid("Request validation failed", {"json": exc.messages}) from None
        return _found(repo.update(sub_id, body))

    @requires(Role.OPERATOR)
    @blp.doc(responses=error_responses(r404="Subscription not found"))
    @blp.response(204)
    def delete(self, sub_id):
        """Delete a subscription (its notifications stay, detached)."""
        if not SubscriptionRepository(get_db()).delete(sub_id):
            raise NotFound("Subscription not found")


def _found(row):
    if row is None:
        raise NotFound("Subscription not found")
    return row
