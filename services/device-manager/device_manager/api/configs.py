"""/api/v1/devices/{id}/config: desired configuration (versioned) beside the reported one, and its audit."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import current_actor, requires
from device_manager.extensions import ctx, get_db
from device_manager.repositories.commands import CommandRepository
from device_manager.repositories.configs import ConfigRepository
from device_manager.schemas.configs import (
    ConfigHistoryListArgs,
    ConfigHistoryPageSchema,
    ConfigSchema,
    DesiredConfigSchema,
)
from device_manager.service import commands as command_rules
from device_manager.service import configs as config_rules
from device_manager.service.errors import NotFound
from device_manager.service.pagination import PageRequest
from device_manager.service.roles import Role

blp = Blueprint("configs", __name__, url_prefix="/api/v1/devices", description="Device configuration")
CONFIG_COMMAND_EXPIRY_S = 3600


@blp.route("/<uuid:device_id>/config")
class DeviceConfig(MethodView):
    """A device's desired and reported configuration."""

    @requires(Role.VIEWER)
    @blp.response(200, ConfigSchema)
    def get(self, device_id):
        """Desired (with version) and reported configuration; in_sync when the device reported this version."""
        return _view(ConfigRepository(get_db()).get(device_id))

    @requires(Role.OPERATOR)
    @blp.arguments(DesiredConfigSchema)
    @blp.response(200, ConfigSchema)
    def put(self, body, device_id):
        """Replace the desired configuration; a change bumps the version and sends update_config (flat params)."""
        repo = ConfigRepository(get_db())
        actor = current_actor()
        expires_at = command_rules.expiry(CONFIG_COMMAND_EXPIRY_S)

        def command(_mqtt_id: str, _version: int) -> dict:
            return {"cmd_id": command_rules.new_cmd_id(), "device_uuid": device_id, "cmd": "update_config",
                    "params": config_rules.command_params(body), "created_by": actor, "expires_at": expires_at}

        result = repo.set_desired(device_id, body, actor,
                                  lambda current, version: config_rules.next_version(current, version, body), command)
        if result is None:
            raise NotFound("Device not found")
        mqtt_id, row = result
        view = _view(repo.get(device_id))
        if row is not None:
            commands = CommandRepository(get_db())
            outgoing = command_rules.Outgoing(mqtt_id, row["cmd_id"], row["cmd"], row["params"])
            command_rules.dispatch(ctx().publisher, commands, [outgoing])
            view["command"] = commands.get(row["cmd_id"])
        return view


@blp.route("/<uuid:device_id>/config/history", methods=["GET"])
@requires(Role.VIEWER)
@blp.arguments(ConfigHistoryListArgs, location="query")
@blp.response(200, ConfigHistoryPageSchema)
def history(args, device_id):
    """The configuration changes the device accepted, newest first: applied params and the result (REQ-CONFIG-001)."""
    if CommandRepository(get_db()).device_identity(device_id) is None:
        raise NotFound("Device not found")
    req = PageRequest.from_args(args)
    return page_response(ConfigRepository(get_db()).history(device_id, req), req)


def _view(row):
    if row is None:
        raise NotFound("Device not found")
    view = dict(row)
    view["desired"] = view["desired"] or {}
    view["version"] = view["version"] or 0
    view["in_sync"] = config_rules.in_sync(view["desired"], view["version"], view["reported"],
                                           view["reported_version"])
    view["command"] = None
    return view
