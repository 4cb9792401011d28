"""Exports at /api/v1/exports/{telemetry,energy}: a device's or a device type's data as streamed CSV or Parquet."""

from __future__ import annotations

import marshmallow as ma
from flask import Response, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.auth.roles import error_responses, requires
from device_manager.export.encode import FORMATS, encode
from device_manager.extensions import services
from device_manager.repositories.exports import ENERGY_COLUMNS, TELEMETRY_COLUMNS
from device_manager.schemas.exports import EnergyExportArgs, TelemetryExportArgs
from device_manager.service.roles import Role

blp = Blueprint("exports", __name__, url_prefix="/api/v1/exports", description="Data export (CSV, Parquet)")
_DOC = {"responses": {**error_responses(r404="Device or device type not found"), "200": {
    "description": "The rows, streamed", "content": {media: {"schema": {"type": "string", "format": "binary"}}
                                                     for media in FORMATS.values()}}}}


def _response(fmt: str, stem: str, what: str, chunks) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{stem}-{what}.{fmt}"'}
    return Response(stream_with_context(chunks), status=200, mimetype=FORMATS[fmt], headers=headers)


@blp.route("/telemetry")
class TelemetryExport(MethodView):
    """Measured and derived readings."""

    @requires(Role.VIEWER)
    @blp.doc(**_DOC)
    @blp.arguments(TelemetryExportArgs, location="query", unknown=ma.RAISE)
    def get(self, args):
        """Rows device_id, ts, metric, value, unit for [start, end) (default the last 24 h, at most 31 days), by
        device then datagram; streamed (Parquet: one row group per batch)."""
        stem, rows = services().metering.export_telemetry(args)
        return _response(args["format"], stem, "telemetry", encode(args["format"], TELEMETRY_COLUMNS, rows))


@blp.route("/energy")
class EnergyExport(MethodView):
    """Energy buckets."""

    @requires(Role.VIEWER)
    @blp.doc(**_DOC)
    @blp.arguments(EnergyExportArgs, location="query", unknown=ma.RAISE)
    def get(self, args):
        """The energy buckets (Wh, VAh, varh, covered seconds) starting in [start, end) (default the last 24 h, at
        most 366 days), by device then time; streamed."""
        stem, rows = services().metering.export_energy(args)
        return _response(args["format"], stem, "energy", encode(args["format"], ENERGY_COLUMNS, rows))
