"""Energy report and register arguments and responses (docs/metering.md)."""

from __future__ import annotations

import functools
from datetime import datetime

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.common import Timestamp
from device_manager.schemas.text import Text, UtcDateTime
from device_manager.service.energy import RESOLUTIONS, UNITS

_UNIT = Text(load_default="kWh", validate=validate.OneOf(UNITS),
             metadata={"description": "Wh or kWh (apparent and reactive energy follow: VAh/kVAh, varh/kvarh)"})


class EnergyArgs(ma.Schema):
    """GET .../energy: a range of whole UTC hours."""

    start = UtcDateTime(metadata={"description": "Inclusive whole UTC hour; default end - 24 h"})
    end = UtcDateTime(metadata={"description": "Exclusive whole UTC hour; default the end of the current hour"})
    resolution = Text(load_default="hour", validate=validate.OneOf(RESOLUTIONS),
                      metadata={"description": "UTC hours, days or months; at most 10,000 periods"})
    unit = _UNIT


class FleetEnergyArgs(EnergyArgs):
    """GET /energy: every device, or the devices of one type."""

    device_type = Text(validate=validate.Length(min=1, max=64), metadata={"description": "Device type name"})


class RegisterArgs(ma.Schema):
    """GET .../energy/register."""

    at = UtcDateTime(metadata={"description": "Default now"})
    unit = _UNIT


class AmountsSchema(ma.Schema):
    """Energy of a period: consumed and regenerated active energy apart, net = consumed - regenerated."""

    consumed = fields.Float(required=True)
    regenerated = fields.Float(required=True, metadata={"description": "Returned to the line, a positive figure"})
    net = fields.Float(required=True)
    apparent = fields.Float(required=True)
    reactive = fields.Float(required=True)
    covered_s = fields.Float(required=True, metadata={"description": "Device-seconds integrated from samples"})
    coverage = fields.Float(required=True, metadata={"description": "Share of the period backed by samples, 0-1"})


class IntervalSchema(AmountsSchema):
    """One hour, day or month (clipped to the range)."""

    start = Timestamp(required=True)
    end = Timestamp(required=True)


class IntervalList(fields.List):
    """List(Nested(IntervalSchema)) in the OpenAPI spec, rendered directly: a month by hour is 720 intervals of 9
    fields, and marshmallow's per-field machinery was most of the request (bench.api energy_1mo_1h); same output.
    The report's amounts are floats already (double precision sums, docs/metering.md)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return [{**i, "start": _utc_text(i["start"]), "end": _utc_text(i["end"])} for i in value]


@functools.lru_cache(maxsize=65_536)
def _utc_text(t: datetime) -> str:
    """A period bound as the API renders timestamps; reports reuse the same hours, so each is rendered once."""
    return _TS._serialize(t, "ts", None)


_TS = Timestamp()


class UnitsSchema(ma.Schema):
    """The unit of each quantity."""

    active = Text(required=True)
    apparent = Text(required=True)
    reactive = Text(required=True)


class EnergySchema(ma.Schema):
    """Energy of a device or a fleet over [start, end)."""

    device_id = Text(metadata={"description": "Set for one device"})
    device_type = Text(allow_none=True, metadata={"description": "Set for a fleet of one type"})
    devices = fields.Integer(required=True, metadata={"description": "Devices the coverage is shared among"})
    start = Timestamp(required=True)
    end = Timestamp(required=True)
    resolution = Text(required=True)
    unit = Text(required=True)
    units = fields.Nested(UnitsSchema, required=True)
    total = fields.Nested(AmountsSchema, required=True)
    intervals = IntervalList(fields.Nested(IntervalSchema), required=True)


class RegisterSchema(ma.Schema):
    """Cumulative registers of a device, as of its last sample at or before `at`."""

    device_id = Text(required=True)
    at = Timestamp(required=True)
    as_of = Timestamp(allow_none=True, required=True, metadata={"description": "Null before the first sample"})
    unit = Text(required=True)
    units = fields.Nested(UnitsSchema, required=True)
    consumed = fields.Float(required=True)
    regenerated = fields.Float(required=True)
    net = fields.Float(required=True)
    apparent = fields.Float(required=True)
    reactive = fields.Float(required=True)
