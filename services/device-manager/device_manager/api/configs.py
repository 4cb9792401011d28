"""/api/v1/devices/{id}/config: desired configuration (versioned) beside the reported one, and its audit."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import current_actor, requires
from device_manager.extensions import services
from device_manager.schemas.configs import (
    ConfigHistoryListArgs,
    ConfigHistoryPageSchema,
    ConfigSchema,
    DesiredConfigSchema,
)
from device_manager.service.pagination import PageRequest
from device_manager.service.roles import Role

blp = Blueprint("configs", __name__, url_prefix="/api/v1/devices", description="Device configuration")


@blp.route("/<uuid:device_id>/config")
class DeviceConfig(MethodView):
    """A device's desired and reported configuration."""

    @requires(Role.VIEWER)
    @blp.response(200, ConfigSchema)
    def get(self, device_id):
        """Desired (with version) and reported configuration; in_sync when the device reported this version."""
        return services().commands.config(device_id)

    @requires(Role.OPERATOR)
    @blp.arguments(DesiredConfigSchema)
    @blp.response(200, ConfigSchema)
    def put(self, body, device_id):
        """Replace the desired configuration; a change bumps the version and sends update_config (flat params)."""
        return services().commands.set_config(device_id, body, current_actor())


@blp.route("/<uuid:device_id>/config/history", methods=["GET"])
@requires(Role.VIEWER)
@blp.arguments(ConfigHistoryListArgs, location="query")
@blp.response(200, ConfigHistoryPageSchema)
def history(args, device_id):
    """The configuration changes the device accepted, newest first: applied params and the result (REQ-CONFIG-001)."""
    req = PageRequest.from_args(args)
    return page_response(services().commands.config_history(device_id, req), req)
