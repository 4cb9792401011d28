"""Command-key schemas: the key appears only in the answers that create it."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from device_manager.schemas.common import Timestamp
from device_manager.schemas.devices import DeviceSchema

KEY_DOC = {"description": "HMAC-SHA256 command-signing key, 64 lower-case hex digits (32 bytes); shown only once"}


class CommandKeyInfoSchema(ma.Schema):
    """Which command key a device has (never the key)."""

    device_id = fields.String()
    has_command_key = fields.Boolean()
    version = fields.Integer(allow_none=True)
    created_at = Timestamp(allow_none=True)
    rotated_at = Timestamp(allow_none=True)


class CommandKeySchema(CommandKeyInfoSchema):
    """A freshly rotated key."""

    command_key = fields.String(metadata=KEY_DOC)


class ProvisionedDeviceSchema(DeviceSchema):
    """A device just registered, with its command key (POST /devices and /devices/bulk only)."""

    command_key = fields.String(metadata=KEY_DOC)


class ProvisionedBulkSchema(ma.Schema):
    """Result of a bulk create, each device with its command key."""

    count = fields.Integer(required=True)
    items = fields.List(fields.Nested(ProvisionedDeviceSchema), required=True)
