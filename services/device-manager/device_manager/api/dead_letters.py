"""Dead letters at /api/v1/dead-letters (admin only): inspect, replay to the original exchange, or discard."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import current_actor, error_responses, requires
from device_manager.backends import publish
from device_manager.extensions import get_db
from device_manager.repositories.dead_letters import DeadLetterRepository, Handled
from device_manager.schemas.common import ErrorSchema
from device_manager.schemas.dead_letters import DeadLetterListArgs, DeadLetterPageSchema, DeadLetterSchema
from device_manager.service.errors import Conflict, NotFound
from device_manager.service.pagination import PageRequest
from device_manager.service.roles import Role
from iothub import topology

blp = Blueprint("dead_letters", __name__, url_prefix="/api/v1/dead-letters",
                description="Messages parked by the pipeline (admin only)")
# Headers the dead-letter policy added; the replayed message carries the original's own headers only.
_DL_HEADERS = {topology.DL_REASON, topology.DL_DETAIL, topology.DL_SOURCE, topology.DL_EXCHANGE,
               topology.DL_ROUTING_KEY, "x-death", "x-first-death-exchange", "x-first-death-queue",
               "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason"}
REPLAYED_FROM = "x-iothub-replayed-from"


@blp.route("")
class DeadLetters(MethodView):
    """The dead-letter collection."""

    @requires(Role.ADMIN)
    @blp.arguments(DeadLetterListArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, DeadLetterPageSchema)
    def get(self, args):
        """List dead letters (filter status, reason, source, exchange, since/until on received_at)."""
        req = PageRequest.from_args(args)
        return page_response(DeadLetterRepository(get_db()).list(req), req)


@blp.route("/<uuid:dl_id>")
class DeadLetterItem(MethodView):
    """One dead letter."""

    @requires(Role.ADMIN)
    @blp.doc(responses=error_responses(r404="Dead letter not found"))
    @blp.response(200, DeadLetterSchema)
    def get(self, dl_id):
        """Read a dead letter."""
        row = DeadLetterRepository(get_db()).get(dl_id)
        if row is None:
            raise NotFound("Dead letter not found")
        return row


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
    result = DeadLetterRepository(get_db()).replay(dl_id, current_actor(), _republish)
    return _done(result, "replayed")


@blp.route("/<uuid:dl_id>/discard", methods=["POST"])
@requires(Role.ADMIN)
@blp.doc(responses=error_responses(r404="Dead letter not found"))
@blp.response(200, DeadLetterSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Not parked")
def discard(dl_id):
    """Mark a parked dead letter discarded (it stays listed for the record)."""
    return _done(DeadLetterRepository(get_db()).discard(dl_id, current_actor()), "discarded")


def _republish(row: dict) -> None:
    headers = {k: v for k, v in (row["headers"] or {}).items() if k not in _DL_HEADERS}
    headers[REPLAYED_FROM] = str(row["id"])
    publish(row["exchange"], row["routing_key"] or "", row["body"], message_id=row["message_id"], headers=headers,
            content_type=headers.pop("content-type", None) or "application/json")


def _done(result: Handled, target: str):
    if not result.found:
        raise NotFound("Dead letter not found")
    if result.no_exchange:
        raise Conflict("This message was rejected at the device edge (MQTT/HTTP) and never reached an exchange; "
                       "it cannot be replayed. Discard it; the device must resend.", {"exchange": None})
    if result.row is None:
        raise Conflict(f"A dead letter that is {result.current_status} cannot be {target}",
                       {"status": result.current_status, "target": target})
    return result.row
