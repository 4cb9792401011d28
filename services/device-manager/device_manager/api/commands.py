"""Commands: POST/GET /devices/{id}/commands, GET /commands, GET /commands/{cmd_id}, POST /commands/bulk."""

from __future__ import annotations

from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import current_actor, requires
from device_manager.extensions import ctx, get_db
from device_manager.repositories.commands import CommandRepository
from device_manager.schemas.commands import (
    BulkCommandSchema,
    BulkResultSchema,
    CommandCreateSchema,
    CommandListArgs,
    CommandPageSchema,
    CommandSchema,
    DeviceCommandListArgs,
)
from device_manager.service import commands as rules
from device_manager.service.errors import Invalid, NotFound
from device_manager.service.pagination import PageRequest
from device_manager.service.roles import Role

blp = Blueprint("commands", __name__, url_prefix="/api/v1", description="Commands sent to devices over MQTT")


@blp.route("/devices/<uuid:device_id>/commands", methods=["POST"])
@requires(Role.OPERATOR)
@blp.arguments(CommandCreateSchema)
@blp.response(201, CommandSchema)
def send(body, device_id):
    """Create a command and publish it at QoS 2 to iot/{device_id}/command; status is sent once the broker has it."""
    params = _check(body["cmd"], body["params"])
    repo = CommandRepository(get_db())
    mqtt_id = repo.device_identity(device_id)
    if mqtt_id is None:
        raise NotFound("Device not found")
    cmd_id = rules.new_cmd_id()
    repo.create({"cmd_id": cmd_id, "device_uuid": device_id, "cmd": body["cmd"], "params": params,
                 "created_by": current_actor(), "expires_at": rules.expiry(body["expires_in_s"])})
    rules.dispatch(ctx().publisher, repo, [rules.Outgoing(mqtt_id, cmd_id, body["cmd"], params)])
    return repo.get(cmd_id)


@blp.route("/devices/<uuid:device_id>/commands", methods=["GET"])
@requires(Role.VIEWER)
@blp.arguments(DeviceCommandListArgs, location="query")
@blp.response(200, CommandPageSchema)
def list_for_device(args, device_id):
    """A device's commands, newest first by default (filter status, cmd)."""
    repo = CommandRepository(get_db())
    if repo.device_identity(device_id) is None:
        raise NotFound("Device not found")
    req = PageRequest.from_args({**args, "device_uuid": device_id})
    return page_response(repo.list(req), req)


@blp.route("/commands", methods=["GET"])
@requires(Role.VIEWER)
@blp.arguments(CommandListArgs, location="query")
@blp.response(200, CommandPageSchema)
def list_all(args):
    """All commands (filter status, cmd, device_id, bulk_id, rollout_id)."""
    req = PageRequest.from_args(args)
    return page_response(CommandRepository(get_db()).list(req), req)


@blp.route("/commands/<uuid:cmd_id>", methods=["GET"])
@requires(Role.VIEWER)
@blp.response(200, CommandSchema)
def read(cmd_id):
    """One command and its state."""
    row = CommandRepository(get_db()).get(cmd_id)
    if row is None:
        raise NotFound("Command not found")
    return row


@blp.route("/commands/bulk", methods=["POST"])
@requires(Role.OPERATOR)
@blp.arguments(BulkCommandSchema)
@blp.response(202, BulkResultSchema)
def send_bulk(body):
    """Send one command to every device matching the selectors (decommissioned excluded unless status is given)."""
    params = _check(body["cmd"], body["params"])
    repo = CommandRepository(get_db())
    filters = {k: body[k] for k in ("device_type", "device_type_id", "status", "connection_status") if k in body}
    if "device_ids" in body:
        filters["ids"] = body["device_ids"]
    bulk_id = rules.new_cmd_id()
    created = repo.create_for_devices(filters, body["cmd"], params, bulk_id=bulk_id,
                                      created_by=current_actor(), expires_at=rules.expiry(body["expires_in_s"]))
    outgoing = [rules.Outgoing(mqtt_id, cmd_id, body["cmd"], params) for cmd_id, mqtt_id in created]
    sent = rules.dispatch(ctx().publisher, repo, outgoing)
    return {"bulk_id": bulk_id, "count": len(created), "sent": len(sent)}


def _check(cmd: str, params: dict) -> dict:
    try:
        return rules.check(cmd, params)
    except rules.CommandError as exc:
        raise Invalid(str(exc), {"json": exc.field_errors}) from exc
