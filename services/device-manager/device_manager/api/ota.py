"""OTA rollouts at /api/v1/ota/rollouts: operators start them, everyone follows their progress."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import current_actor, requires
from device_manager.extensions import ctx, get_db
from device_manager.repositories.commands import CommandRepository
from device_manager.repositories.ota import OtaRepository
from device_manager.schemas.ota import (
    OtaDeviceStatePageSchema,
    OtaStateListArgs,
    RolloutCreateSchema,
    RolloutListArgs,
    RolloutPageSchema,
    RolloutSchema,
)
from device_manager.service import commands as command_rules
from device_manager.service.errors import NotFound
from device_manager.service.ota import summarise
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
        page = OtaRepository(get_db()).list(req)
        return page_response(type(page)([_with_summary(r) for r in page.items], page.total), req)

    @requires(Role.OPERATOR)
    @blp.arguments(RolloutCreateSchema)
    @blp.response(201, RolloutSchema)
    def post(self, body):
        """Start a rollout: one start_ota {fw_version, fw_url, fw_sha256, fw_size_bytes} per target device."""
        filters = {k: body[k] for k in ("device_type", "device_type_id", "status") if k in body}
        if "device_ids" in body:
            filters["ids"] = body["device_ids"]
        params = command_rules.ota_params(body["fw_version"], body["url"], body["sha256"], body["size_bytes"])
        rollout, targets = OtaRepository(get_db()).create(body, params, filters, current_actor(),
                                                          command_rules.expiry(body["expires_in_s"]))
        outgoing = [command_rules.Outgoing(mqtt_id, cmd_id, "start_ota", params) for cmd_id, mqtt_id in targets]
        sent = command_rules.dispatch(ctx().publisher, CommandRepository(get_db()), outgoing)
        return {**_with_summary(rollout), "sent": len(sent)}


@blp.route("/<uuid:rollout_id>")
class RolloutItem(MethodView):
    """One rollout."""

    @requires(Role.VIEWER)
    @blp.response(200, RolloutSchema)
    def get(self, rollout_id):
        """A rollout with its per-state summary."""
        rollout = OtaRepository(get_db()).get(rollout_id)
        if rollout is None:
            raise NotFound("Rollout not found")
        return _with_summary(rollout)


@blp.route("/<uuid:rollout_id>/devices", methods=["GET"])
@requires(Role.VIEWER)
@blp.arguments(OtaStateListArgs, location="query")
@blp.response(200, OtaDeviceStatePageSchema)
def device_states(args, rollout_id):
    """Per-device progress of a rollout (filter state)."""
    repo = OtaRepository(get_db())
    if not repo.exists(rollout_id):
        raise NotFound("Rollout not found")
    req = PageRequest.from_args(args)
    return page_response(repo.states(rollout_id, req), req)


def _with_summary(rollout: dict) -> dict:
    view = {k: v for k, v in rollout.items() if k not in ("counts", "progress")}
    view["summary"] = summarise(rollout.get("counts", {}), rollout.get("progress", []))
    return view
