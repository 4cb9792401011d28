"""The devices list: search, filters, pagination, and a command to the selected devices."""

from __future__ import annotations

from flask import Blueprint, request

from device_manager.console import data, forms
from device_manager.console.blueprint import actor, requires
from device_manager.console.cache import cached
from device_manager.schemas.devices import DeviceListArgs
from device_manager.service.errors import Invalid
from device_manager.service.roles import Role
from iothub.contract.commands import COMMANDS

TYPES_TTL_S = 30.0  # the filter's type names; counting devices per type is the costly part
bp = Blueprint("devices", __name__)


@bp.route("/devices")
@requires(Role.VIEWER)
def index():
    """A page of devices matching the filters."""
    args = forms.query(DeviceListArgs)
    args.setdefault("page_size", 25)
    req = data.page_request(DeviceListArgs, args)
    page = data.devices(req)
    return forms.list_page("console/devices.html", "console/_devices_table.html", "devices-table",
                           page, req, args=args, types=cached("device_types", TYPES_TTL_S, data.device_type_names),
                           commands=COMMANDS)


@bp.route("/devices/bulk-command", methods=["POST"])
@requires(Role.OPERATOR)
def bulk_command():
    """One command to every selected device."""
    ids = request.form.getlist("device_ids")
    if not ids:
        raise Invalid("Select at least one device first")
    result = data.send_bulk({"cmd": request.form.get("cmd", ""), "params": forms.json_object("params"),
                             "device_ids": ids}, actor())
    return forms.done(f"{request.form.get('cmd')} sent to {result['sent']} of {result['count']} devices "
                      f"(bulk {result['bulk_id']})")
