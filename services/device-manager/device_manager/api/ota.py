"""OTA rollouts at /api/v1/ota/rollouts: operators start them, everyone follows their progress."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import current_actor, requires
from device_manager.extensions import services
from device_manager.schemas.ota import (
    OtaDeviceStatePageSchema,
    OtaStateListArgs,
    RolloutCreateSchema,
    RolloutListArgs,
    RolloutPageSchema,
    RolloutSchema,
)
from device_manager.service.pagination import PageRequest
from device_manager.service.roles import Role

blp = Blueprint("ota", __name__, url_prefix="/api/v1/ota/rollouts", description="Firmware rollouts")


@blp.route("")
class Rollouts(MethodView):
    """The rollout collection."""

    @requires(Role.VIEWER)
    @blp.arguments(RolloutListArgs, location="query")
    @blp.response(200, RolloutPageSchema)
    def get(self, args):
        """List rollouts with their per-state summaries (filter fw_version)."""
        req = PageRequest.from_args(args)
        return page_response(services().commands.rollouts_page(req), req)

    @requires(Role.OPERATOR)
    @blp.arguments(RolloutCreateSchema)
    @blp.response(201, RolloutSchema)
    def post(self, body):
        """Start a rollout: one start_ota {fw_version, fw_url, fw_sha256, fw_size_bytes} per target device; for an
        uploaded firmware_id, fw_url is a pre-signed URL that expires and sha256/size are the server's own."""
        return services().commands.start_rollout(body, current_actor())


@blp.route("/<uuid:rollout_id>")
class RolloutItem(MethodView):
    """One rollout."""

    @requires(Role.VIEWER)
    @blp.response(200, RolloutSchema)
    def get(self, rollout_id):
        """A rollout with its per-state summary."""
        return services().commands.rollout(rollout_id)


@blp.route("/<uuid:rollout_id>/devices", methods=["GET"])
@requires(Role.VIEWER)
@blp.arguments(OtaStateListArgs, location="query")
@blp.response(200, OtaDeviceStatePageSchema)
def device_states(args, rollout_id):
    """Per-device progress of a rollout (filter state)."""
    req = PageRequest.from_args(args)
    return page_response(services().commands.rollout_states(rollout_id, req), req)
