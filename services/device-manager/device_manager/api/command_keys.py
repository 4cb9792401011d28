"""A device's command-signing key at /api/v1/devices/{id}/command-key: viewers see that it exists, operators rotate."""

from __future__ import annotations

from flask_smorest import Blueprint

from device_manager.auth.roles import requires
from device_manager.extensions import services
from device_manager.schemas.command_keys import CommandKeyInfoSchema, CommandKeySchema
from device_manager.service.command_keys import CommandKeyService
from device_manager.service.roles import Role

blp = Blueprint("command_keys", __name__, url_prefix="/api/v1/devices", description="Command-signing keys")


def command_keys() -> CommandKeyService:
    """The app's command-key service."""
    return services().command_keys


@blp.route("/<uuid:device_id>/command-key", methods=["GET"])
@requires(Role.VIEWER)
@blp.response(200, CommandKeyInfoSchema)
def info(device_id):
    """Whether the device has a key, its version and when it was made or rotated; never the key."""
    return command_keys().info(device_id)


@blp.route("/<uuid:device_id>/command-key/rotate", methods=["POST"])
@requires(Role.OPERATOR)
@blp.response(200, CommandKeySchema)
def rotate(device_id):
    """Replace the device's key and return the new one this once; commands signed with the old key stop being
    accepted by the device once it is given the new key."""
    return {**command_keys().rotate(device_id), "has_command_key": True}
