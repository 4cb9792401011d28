"""Commands: POST/GET /devices/{id}/commands, GET /commands, GET /commands/{cmd_id}, POST /commands/bulk."""

from __future__ import annotations

from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import current_actor, requires
from device_manager.extensions import services
from device_manager.schemas.commands import (
    BulkCommandSchema,
    BulkResultSchema,
    CommandCreateSchema,
    CommandListArgs,
    CommandPageSchema,
    CommandSchema,
    DeviceCommandListArgs,
)
from device_manager.service.pagination import PageRequest
from device_manager.service.roles import Role

blp = Blueprint("commands", __name__, url_prefix="/api/v1", description="Commands sent to devices over MQTT")


@blp.route("/devices/<uuid:device_id>/commands", methods=["POST"])
@requires(Role.OPERATOR)
@blp.arguments(CommandCreateSchema)
@blp.response(201, CommandSchema)
def send(body, device_id):
    """Create a command and publish it at QoS 2 to iot/{device_id}/command; status is sent once the broker has it."""
    return services().commands.send(device_id, body["cmd"], body["params"], body["expires_in_s"], current_actor())


@blp.route("/devices/<uuid:device_id>/commands", methods=["GET"])
@requires(Role.VIEWER)
@blp.arguments(DeviceCommandListArgs, location="query")
@blp.response(200, CommandPageSchema)
def list_for_device(args, device_id):
    """A device's commands, newest first by default (filter status, cmd)."""
    req = PageRequest.from_args({**args, "device_uuid": device_id})
    return page_response(services().commands.list_for_device(device_id, req), req)


@blp.route("/commands", methods=["GET"])
@requires(Role.VIEWER)
@blp.arguments(CommandListArgs, location="query")
@blp.response(200, CommandPageSchema)
def list_all(args):
    """All commands (filter status, cmd, device_id, bulk_id, rollout_id)."""
    req = PageRequest.from_args(args)
    return page_response(services().commands.list(req), req)


@blp.route("/commands/<uuid:cmd_id>", methods=["GET"])
@requires(Role.VIEWER)
@blp.response(200, CommandSchema)
def read(cmd_id):
    """One command and its state."""
    return services().commands.get(cmd_id)


@blp.route("/commands/bulk", methods=["POST"])
@requires(Role.OPERATOR)
@blp.arguments(BulkCommandSchema)
@blp.response(202, BulkResultSchema)
def send_bulk(body):
    """Send one command to every device matching the selectors (decommissioned excluded unless status is given)."""
    return services().commands.send_bulk(body, current_actor())
