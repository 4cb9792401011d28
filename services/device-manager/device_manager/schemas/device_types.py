"""Device type schemas."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.common import Timestamp, list_args, page_schema

NAME = validate.Regexp(r"^[A-Za-z0-9_-]{1,64}$", error="1-64 letters, digits, _ or -")


class MetricSchema(ma.Schema):
    """One metric a device type reports."""

    type = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9_]{1,64}$"))
    unit = fields.String(required=True, validate=validate.Length(max=32))
    min = fields.Float(allow_none=True, load_default=None)
    max = fields.Float(allow_none=True, load_default=None)

    @ma.validates_schema
    def _bounds(self, data, **_kwargs):
        if data.get("min") is not None and data.get("max") is not None and data["min"] > data["max"]:
            raise ma.ValidationError("min must not exceed max", "min")


def _unique_types(metrics):
    names = [m["type"] for m in metrics]
    if len(names) != len(set(names)):
        raise ma.ValidationError("metric types must be unique")


_METRICS = dict(validate=[validate.Length(max=100), _unique_types])
_INTERVAL = validate.Range(min=1, max=86400)


class DeviceTypeSchema(ma.Schema):
    """A device type as returned by the API."""

    id = fields.UUID(dump_only=True)
    name = fields.String(required=True)
    description = fields.String()
    metrics = fields.List(fields.Nested(MetricSchema))
    send_interval_s = fields.Integer()
    hello_interval_s = fields.Integer()
    retention_days = fields.Integer()
    device_count = fields.Integer(dump_only=True)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)


class DeviceTypeCreateSchema(ma.Schema):
    """POST /device-types."""

    name = fields.String(required=True, validate=NAME)
    description = fields.String(load_default="", validate=validate.Length(max=1000))
    metrics = fields.List(fields.Nested(MetricSchema), load_default=list, **_METRICS)
    send_interval_s = fields.Integer(load_default=10, validate=_INTERVAL)
    hello_interval_s = fields.Integer(load_default=60, validate=_INTERVAL)
    retention_days = fields.Integer(load_default=90, validate=validate.Range(min=1, max=3650))


class DeviceTypeUpdateSchema(ma.Schema):
    """PATCH /device-types/{id}: any subset."""

    name = fields.String(validate=NAME)
    description = fields.String(validate=validate.Length(max=1000))
    metrics = fields.List(fields.Nested(MetricSchema), **_METRICS)
    send_interval_s = fields.Integer(validate=_INTERVAL)
    hello_interval_s = fields.Integer(validate=_INTERVAL)
    retention_days = fields.Integer(validate=validate.Range(min=1, max=3650))


DeviceTypePageSchema = page_schema(DeviceTypeSchema)
DeviceTypeListArgs = list_args("DeviceTypeListArgs", ("name", "created_at", "updated_at"), "name",
                               name=fields.String(validate=validate.Length(min=1, max=64)),
                               q=fields.String(validate=validate.Length(min=1, max=64),
                                               metadata={"description": "Substring of the name"}))
