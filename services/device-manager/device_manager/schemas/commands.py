"""Command schemas."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.common import Timestamp, list_args, page_schema
from device_manager.schemas.devices import CONNECTION, STATUSES
from device_manager.service.commands import OPEN, TERMINAL
from iothub.contract.commands import COMMANDS

_EXPIRES = fields.Integer(load_default=300, validate=validate.Range(min=1, max=7 * 86400),
                          metadata={"description": "Seconds until an unacknowledged command expires"})


class CommandSchema(ma.Schema):
    """A command and its state (pending -> sent -> accepted|rejected|error|unsupported|expired)."""

    cmd_id = fields.UUID()
    device_id = fields.String(metadata={"description": "MQTT identity of the device"})
    device_uuid = fields.UUID()
    cmd = fields.String()
    params = fields.Dict()
    status = fields.String(validate=validate.OneOf(OPEN + TERMINAL))
    detail = fields.String(allow_none=True)
    bulk_id = fields.UUID(allow_none=True)
    rollout_id = fields.UUID(allow_none=True)
    created_by = fields.String(allow_none=True)
    created_at = Timestamp()
    sent_at = Timestamp(allow_none=True)
    acked_at = Timestamp(allow_none=True)
    expires_at = Timestamp()


class CommandCreateSchema(ma.Schema):
    """POST /devices/{id}/commands."""

    cmd = fields.String(required=True, validate=validate.OneOf(COMMANDS))
    params = fields.Dict(keys=fields.String(), load_default=dict, metadata={
        "description": "start_ota: fw_version, fw_url, fw_sha256, fw_size_bytes (device spec v2); the legacy url, "
                       "sha256 and size are accepted and renamed before the command is stored and sent"})
    expires_in_s = _EXPIRES


class BulkCommandSchema(CommandCreateSchema):
    """POST /commands/bulk: the same command to every device matching the selectors (at least one)."""

    device_type = fields.String(validate=validate.Length(min=1, max=64))
    device_type_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(STATUSES),
                           metadata={"description": "Default: every status except decommissioned"})
    connection_status = fields.String(validate=validate.OneOf(CONNECTION))
    device_ids = fields.List(fields.UUID(), validate=validate.Length(min=1, max=10000))

    @ma.validates_schema
    def _some_selector(self, data, **_kwargs):
        if not {"device_type", "device_type_id", "status", "connection_status", "device_ids"} & set(data):
            raise ma.ValidationError("Give at least one of device_type, device_type_id, status, connection_status "
                                     "or device_ids", "device_ids")


class BulkResultSchema(ma.Schema):
    """Result of a bulk send."""

    bulk_id = fields.UUID(required=True)
    count = fields.Integer(required=True, metadata={"description": "Commands created"})
    sent = fields.Integer(required=True, metadata={"description": "Commands the broker acknowledged"})


CommandPageSchema = page_schema(CommandSchema)
_COMMAND_SORT = ("created_at", "status", "cmd", "expires_at", "acked_at")
_COMMAND_FILTERS = {"status": fields.String(validate=validate.OneOf(OPEN + TERMINAL)),
                    "cmd": fields.String(validate=validate.OneOf(COMMANDS))}
DeviceCommandListArgs = list_args("DeviceCommandListArgs", _COMMAND_SORT, "-created_at", **_COMMAND_FILTERS)
CommandListArgs = list_args("CommandListArgs", _COMMAND_SORT, "-created_at", **_COMMAND_FILTERS,
                            device_id=fields.String(validate=validate.Length(min=1, max=64)),
                            bulk_id=fields.UUID(), rollout_id=fields.UUID())
