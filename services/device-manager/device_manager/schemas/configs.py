"""Device configuration schemas."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.commands import CommandSchema
from device_manager.schemas.common import Timestamp


class DesiredConfigSchema(ma.Schema):
    """The configuration knobs a device accepts in update_config."""

    sampling_interval_s = fields.Float(validate=validate.Range(min=0.01, max=86400))
    send_interval_s = fields.Float(validate=validate.Range(min=0.1, max=86400))
    hello_interval_s = fields.Float(validate=validate.Range(min=1, max=86400))
    samples_per_datagram = fields.Integer(validate=validate.Range(min=0, max=200),
                                          metadata={"description": "0: send_interval / sampling_interval"})

    @ma.validates_schema
    def _not_empty(self, data, **_kwargs):
        if not data:
            raise ma.ValidationError("Give at least one setting")


class ConfigSchema(ma.Schema):
    """Desired configuration beside the one the device last reported."""

    device_id = fields.String()
    device_uuid = fields.UUID()
    desired = fields.Dict()
    version = fields.Integer()
    reported = fields.Dict(allow_none=True)
    reported_version = fields.Integer(allow_none=True)
    reported_at = Timestamp(allow_none=True)
    updated_by = fields.String(allow_none=True)
    updated_at = Timestamp(allow_none=True)
    in_sync = fields.Boolean()
    command = fields.Nested(CommandSchema, allow_none=True,
                            metadata={"description": "The update_config command this change sent (PUT only)"})
