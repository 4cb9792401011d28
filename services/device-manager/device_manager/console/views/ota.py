"""OTA rollouts: start one, follow its progress per device."""

from __future__ import annotations

from flask import Blueprint, request, url_for

from device_manager.console import data, forms
from device_manager.console.blueprint import actor, is_htmx, requires
from device_manager.console.cache import cached
from device_manager.schemas.ota import OtaStateListArgs, RolloutListArgs
from device_manager.service.roles import Role

TYPES_TTL_S = 30.0  # the filter's type names; counting devices per type is the costly part
bp = Blueprint("ota", __name__)


@bp.route("/ota")
@requires(Role.VIEWER)
def index():
    """Rollouts with their progress, and the form to start one."""
    args = forms.query(RolloutListArgs)
    args.setdefault("page_size", 20)
    req = data.page_request(RolloutListArgs, args)
    page = data.rollouts(req)
    types = cached("device_types", TYPES_TTL_S, data.device_type_names)
    return forms.list_page("console/ota.html", "console/_rollouts_table.html", "rollouts-table", page, req, types=types)


@bp.route("/ota", methods=["POST"])
@requires(Role.OPERATOR)
def start():
    """Start a rollout to a device type or to listed device UUIDs."""
    values = forms.fields("fw_version", "url", "sha256", "size_bytes", "device_type")
    ids = [i.strip() for i in request.form.get("device_ids", "").replace(",", " ").split() if i.strip()]
    if ids:
        values["device_ids"] = ids
    created = data.start_rollout(values, actor())
    target = url_for("console.ota.show", rollout_id=created["id"])
    if is_htmx():
        return "", 204, {"HX-Redirect": target}
    return forms.done(f"Rollout {created['fw_version']} started")


@bp.route("/ota/<uuid:rollout_id>")
@requires(Role.VIEWER)
def show(rollout_id):
    """One rollout: summary and device states (the progress part is polled)."""
    args = forms.query(OtaStateListArgs)
    args.setdefault("page_size", 50)
    req = data.page_request(OtaStateListArgs, args)
    rollout = data.rollout(rollout_id)
    page = data.rollout_states(rollout_id, req)
    return forms.list_page("console/rollout.html", "console/_rollout_progress.html", "rollout-progress",
                           page, req, r=rollout)
