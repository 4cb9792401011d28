"""Events at /api/v1/events: everyone reads; operators acknowledge and resolve (open -> acknowledged -> resolved)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import current_actor, error_responses, requires
from device_manager.extensions import services
from device_manager.schemas.common import ErrorSchema
from device_manager.schemas.events import EventListArgs, EventPageSchema, EventSchema, ResolveSchema
from device_manager.service.pagination import PageRequest
from device_manager.service.roles import Role

blp = Blueprint("events", __name__, url_prefix="/api/v1/events",
                description="Events raised by the rule engine; acknowledged and resolved by people")


@blp.route("")
class Events(MethodView):
    """The event collection."""

    @requires(Role.VIEWER)
    @blp.arguments(EventListArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, EventPageSchema)
    def get(self, args):
        """List events (filter status, severity (repeatable), device_id, device_type, rule_id, rule_kind,
        since/until on last_ts; newest first by default)."""
        req = PageRequest.from_args(args)
        return page_response(services().events.list(req), req)


@blp.route("/<uuid:event_id>")
class EventItem(MethodView):
    """One event."""

    @requires(Role.VIEWER)
    @blp.doc(responses=error_responses(r404="Event not found"))
    @blp.response(200, EventSchema)
    def get(self, event_id):
        """Read an event."""
        return services().events.get(event_id)


@blp.route("/<uuid:event_id>/acknowledge", methods=["POST"])
@requires(Role.OPERATOR)
@blp.doc(responses=error_responses(r404="Event not found"))
@blp.response(200, EventSchema)
@blp.alt_response(409, schema=ErrorSchema, description="The event is not open")
def acknowledge(event_id):
    """Acknowledge an open event (records who and when); 409 when it is already acknowledged or resolved."""
    return services().events.acknowledge(event_id, current_actor())


@blp.route("/<uuid:event_id>/resolve", methods=["POST"])
@requires(Role.OPERATOR)
@blp.doc(responses=error_responses(r404="Event not found"))
@blp.arguments(ResolveSchema)
@blp.response(200, EventSchema)
@blp.alt_response(409, schema=ErrorSchema, description="The event is already resolved")
def resolve(body, event_id):
    """Resolve an open or acknowledged event with a comment (records who and when); 409 when already resolved."""
    return services().events.resolve(event_id, current_actor(), body["comment"])
