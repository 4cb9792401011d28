"""Dead letters at /api/v1/dead-letters (admin only): inspect, replay to the original exchange, or discard."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import current_actor, error_responses, requires
from device_manager.extensions import services
from device_manager.schemas.common import ErrorSchema
from device_manager.schemas.dead_letters import DeadLetterListArgs, DeadLetterPageSchema, DeadLetterSchema
from device_manager.service.pagination import PageRequest
from device_manager.service.roles import Role

blp = Blueprint("dead_letters", __name__, url_prefix="/api/v1/dead-letters",
                description="Messages parked by the pipeline (admin only)")


@blp.route("")
class DeadLetters(MethodView):
    """The dead-letter collection."""

    @requires(Role.ADMIN)
    @blp.arguments(DeadLetterListArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, DeadLetterPageSchema)
    def get(self, args):
        """List dead letters (filter status, reason, source, exchange, since/until on received_at)."""
        req = PageRequest.from_args(args)
        return page_response(services().dead_letters.list(req), req)


@blp.route("/<uuid:dl_id>")
class DeadLetterItem(MethodView):
    """One dead letter."""

    @requires(Role.ADMIN)
    @blp.doc(responses=error_responses(r404="Dead letter not found"))
    @blp.response(200, DeadLetterSchema)
    def get(self, dl_id):
        """Read a dead letter."""
        return services().dead_letters.get(dl_id)


@blp.route("/<uuid:dl_id>/replay", methods=["POST"])
@requires(Role.ADMIN)
@blp.doc(responses=error_responses(r404="Dead letter not found"))
@blp.response(200, DeadLetterSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Not parked, or rejected at the edge (no AMQP exchange)")
@blp.alt_response(503, schema=ErrorSchema, description="RabbitMQ did not take the message; it stays parked")
def replay(dl_id):
    """Republish the body to its original exchange and routing key (every queue bound there gets it again;
    consumers are idempotent on msg_id), then mark it replayed. Messages rejected at the MQTT/HTTP edge never
    reached an exchange and cannot be replayed (409): the device must resend."""
    return services().dead_letters.replay(dl_id, current_actor())


@blp.route("/<uuid:dl_id>/discard", methods=["POST"])
@requires(Role.ADMIN)
@blp.doc(responses=error_responses(r404="Dead letter not found"))
@blp.response(200, DeadLetterSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Not parked")
def discard(dl_id):
    """Mark a parked dead letter discarded (it stays listed for the record)."""
    return services().dead_letters.discard(dl_id, current_actor())
