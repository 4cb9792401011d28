"""Energy at /api/v1/devices/{id}/energy[/register] and /api/v1/energy (a fleet), from the collector's buckets."""

from __future__ import annotations

from datetime import UTC, datetime

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.telemetry import device_text_id
from device_manager.auth.roles import error_responses, requires
from device_manager.extensions import get_db
from device_manager.repositories.energy import EnergyRepository
from device_manager.schemas.energy import EnergyArgs, EnergySchema, FleetEnergyArgs, RegisterArgs, RegisterSchema
from device_manager.service import energy
from device_manager.service.errors import Invalid, NotFound
from device_manager.service.roles import Role

blp = Blueprint("energy", __name__, url_prefix="/api/v1", description="Energy (metering)")


def _report(args, device_ids, device_type, devices):
    try:
        start, end = energy.bounds(args.get("start"), args.get("end"), args["resolution"])
    except energy.EnergyQueryError as exc:
        raise Invalid(exc.message, {"query": {exc.field: [exc.message]}}) from None
    sums = EnergyRepository(get_db()).periods(device_ids, device_type, start, end, args["resolution"])
    return energy.report(sums, start, end, args["resolution"], args["unit"], devices)


@blp.route("/devices/<uuid:device_id>/energy")
class DeviceEnergy(MethodView):
    """Energy of one device."""

    @requires(Role.VIEWER)
    @blp.doc(responses=error_responses(r404="Device not found"))
    @blp.arguments(EnergyArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, EnergySchema)
    def get(self, args, device_id):
        """Consumed, regenerated, apparent and reactive energy per UTC hour, day or month of [start, end), with
        coverage (the share of each period backed by samples). 422 when a bound is not a whole hour."""
        text_id = device_text_id(device_id)
        return {"device_id": text_id, **_report(args, [text_id], None, 1)}


@blp.route("/devices/<uuid:device_id>/energy/register")
class DeviceRegister(MethodView):
    """Cumulative registers of one device."""

    @requires(Role.VIEWER)
    @blp.doc(responses=error_responses(r404="Device not found"))
    @blp.arguments(RegisterArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, RegisterSchema)
    def get(self, args, device_id):
        """Energy since the device's first sample up to `at` (a meter's registers), as of its last sample then."""
        text_id = device_text_id(device_id)
        at = args.get("at") or datetime.now(UTC)
        sums, as_of = EnergyRepository(get_db()).register(text_id, at)
        return {"device_id": text_id, "at": at, "as_of": as_of, **energy.register(sums, args["unit"])}


@blp.route("/energy")
class FleetEnergy(MethodView):
    """Energy of a fleet."""

    @requires(Role.VIEWER)
    @blp.doc(responses=error_responses(r404="Device type not found"))
    @blp.arguments(FleetEnergyArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, EnergySchema)
    def get(self, args):
        """Energy of every device, or of one device type's devices; coverage is per device-second of the range
        over the devices registered now."""
        device_type = args.get("device_type")
        repo = EnergyRepository(get_db())
        if device_type is not None and not repo.type_exists(device_type):
            raise NotFound("Device type not found")
        return {"device_type": device_type, **_report(args, None, device_type, repo.device_count(device_type))}
