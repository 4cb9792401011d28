"""Device telemetry at /api/v1/devices/{id}/telemetry from the configured series backend (PostgreSQL or InfluxDB)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.auth.roles import error_responses, requires
from device_manager.extensions import services
from device_manager.schemas.telemetry import LatestArgs, LatestSchema, TelemetryArgs, TelemetrySchema
from device_manager.service.roles import Role

blp = Blueprint("telemetry", __name__, url_prefix="/api/v1/devices", description="Device telemetry")


@blp.route("/<uuid:device_id>/telemetry")
class Telemetry(MethodView):
    """Raw points or aggregates."""

    @requires(Role.VIEWER)
    @blp.doc(responses=error_responses(r404="Device not found"))
    @blp.arguments(TelemetryArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, TelemetrySchema)
    def get(self, args, device_id):
        """Points in [start, end) (default the last hour), or with every= one value per epoch-aligned bucket
        (agg mean|min|max|last|count). 422 when the range exceeds 31 days, start >= end, or the answer would
        hold more than 10,000 points per metric."""
        return services().readings.telemetry(device_id, start=args.get("start"), end=args.get("end"),
                                             metrics=tuple(args.get("metric") or ()), every=args.get("every"),
                                             agg=args.get("agg"))


@blp.route("/<uuid:device_id>/telemetry/latest")
class LatestTelemetry(MethodView):
    """Newest values."""

    @requires(Role.VIEWER)
    @blp.doc(responses=error_responses(r404="Device not found"))
    @blp.arguments(LatestArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, LatestSchema)
    def get(self, args, device_id):
        """The newest value of each metric (or of the given ones): PostgreSQL looks at the device's newest 500
        datagrams, InfluxDB at the last 30 days."""
        return services().readings.latest(device_id, tuple(args.get("metric") or ()))
