"""Device telemetry at /api/v1/devices/{id}/telemetry from the configured series backend (PostgreSQL or InfluxDB)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.auth.roles import error_responses, requires
from device_manager.backends import get_series
from device_manager.extensions import get_db
from device_manager.repositories.devices import DeviceRepository
from device_manager.schemas.telemetry import LatestArgs, LatestSchema, TelemetryArgs, TelemetrySchema
from device_manager.service.errors import Invalid, NotFound
from device_manager.service.roles import Role
from device_manager.telemetry import QueryError, build_query, latest_to_dict, series_to_dict

blp = Blueprint("telemetry", __name__, url_prefix="/api/v1/devices", description="Device telemetry")


def device_text_id(device_pk) -> str:
    """The device's text id (the one in telemetry and the archive) for its UUID; 404 when unknown."""
    device = DeviceRepository(get_db()).get(device_pk)
    if device is None:
        raise NotFound("Device not found")
    return device["device_id"]


def query_error(exc: QueryError) -> Invalid:
    """A telemetry/archive bound violation as the standard 422 body."""
    return Invalid(exc.message, {"query": {exc.field: [exc.message]}})


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
        text_id = device_text_id(device_id)
        try:
            q = build_query(text_id, start=args.get("start"), end=args.get("end"),
                            metrics=tuple(args.get("metric") or ()), every=args.get("every"), agg=args.get("agg"))
            return series_to_dict(q, get_series().query(q))
        except QueryError as exc:
            raise query_error(exc) from None


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
        text_id = device_text_id(device_id)
        return latest_to_dict(text_id, get_series().latest(text_id, tuple(args.get("metric") or ())))
