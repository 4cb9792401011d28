"""Energy at /api/v1/devices/{id}/energy[/register] and /api/v1/energy (a fleet), from the collector's buckets."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.auth.roles import error_responses, requires
from device_manager.extensions import services
from device_manager.schemas.energy import EnergyArgs, EnergySchema, FleetEnergyArgs, RegisterArgs, RegisterSchema
from device_manager.service.roles import Role

blp = Blueprint("energy", __name__, url_prefix="/api/v1", description="Energy (metering)")


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
        return services().metering.device_energy(device_id, args.get("start"), args.get("end"), args["resolution"],
                                                 args["unit"])


@blp.route("/devices/<uuid:device_id>/energy/register")
class DeviceRegister(MethodView):
    """Cumulative registers of one device."""

    @requires(Role.VIEWER)
    @blp.doc(responses=error_responses(r404="Device not found"))
    @blp.arguments(RegisterArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, RegisterSchema)
    def get(self, args, device_id):
        """Energy since the device's first sample up to `at` (a meter's registers), as of its last sample then."""
        return services().metering.device_register(device_id, args.get("at"), args["unit"])


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
        return services().metering.fleet_energy(args.get("device_type"), args.get("start"), args.get("end"),
                                                args["resolution"], args["unit"])
