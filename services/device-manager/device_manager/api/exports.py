"""Exports at /api/v1/exports/{telemetry,energy}: a device's or a device type's data as streamed CSV or Parquet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import marshmallow as ma
from flask import Response, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.telemetry import device_text_id
from device_manager.auth.roles import error_responses, requires
from device_manager.export.encode import FORMATS, encode
from device_manager.extensions import get_db, get_settings
from device_manager.repositories.exports import ENERGY_COLUMNS, TELEMETRY_COLUMNS, ExportRepository
from device_manager.schemas.exports import EnergyExportArgs, TelemetryExportArgs
from device_manager.service.errors import Invalid, NotFound
from device_manager.service.roles import Role

blp = Blueprint("exports", __name__, url_prefix="/api/v1/exports", description="Data export (CSV, Parquet)")
_DOC = {"responses": {**error_responses(r404="Device or device type not found"), "200": {
    "description": "The rows, streamed", "content": {media: {"schema": {"type": "string", "format": "binary"}}
                                                     for media in FORMATS.values()}}}}


def _scope(args, repo: ExportRepository, max_range: timedelta) -> tuple[list[str], str, datetime, datetime]:
    """Devices, a file name stem and the validated range of an export request."""
    if ("device_id" in args) == ("device_type" in args):
        raise Invalid("Give exactly one of device_id or device_type", {"query": {"device_id": ["one of two"]}})
    end = args.get("end") or datetime.now(UTC)
    start = args.get("start") or end - timedelta(days=1)
    if start >= end or end - start > max_range:
        raise Invalid(f"start must be before end, at most {max_range.days} days", {"query": {"end": ["range"]}})
    if "device_id" in args:
        text_id = device_text_id(args["device_id"])
        return [text_id], text_id, start, end
    devices = repo.devices_of_type(args["device_type"])
    if devices is None:
        raise NotFound("Device type not found")
    return devices, args["device_type"], start, end


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
        repo = ExportRepository(get_db(), batch_rows=get_settings().export_batch_rows)
        devices, stem, start, end = _scope(args, repo, timedelta(days=31))
        rows = repo.telemetry(devices, start, end, tuple(args.get("metric") or ()))
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
        repo = ExportRepository(get_db(), batch_rows=get_settings().export_batch_rows)
        devices, stem, start, end = _scope(args, repo, timedelta(days=366))
        return _response(args["format"], stem, "energy",
                         encode(args["format"], ENERGY_COLUMNS, repo.energy(devices, start, end)))
