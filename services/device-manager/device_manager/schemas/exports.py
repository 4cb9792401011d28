"""Export arguments."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.export.encode import FORMATS
from device_manager.schemas.text import Text, UtcDateTime


class EnergyExportArgs(ma.Schema):
    """GET /exports/energy: one of device_id or device_type."""

    device_id = fields.UUID(metadata={"description": "The device's id (as in /devices/{id})"})
    device_type = Text(validate=validate.Length(min=1, max=64), metadata={"description": "Device type name"})
    start = UtcDateTime(metadata={"description": "Inclusive; default end - 24 h"})
    end = UtcDateTime(metadata={"description": "Exclusive; default now"})
    format = Text(load_default="csv", validate=validate.OneOf(FORMATS), metadata={"description": "csv or parquet"})


class TelemetryExportArgs(EnergyExportArgs):
    """GET /exports/telemetry."""

    metric = fields.List(Text(validate=validate.Length(min=1, max=64)), validate=validate.Length(max=20),
                         metadata={"description": "Repeat for several; default all, derived ones included"})
