"""Command, configuration and OTA schemas."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.common import Timestamp, list_args, page_schema
from device_manager.schemas.devices import CONNECTION, STATUSES
from device_manager.service.commands import OPEN, TERMINAL
from device_manager.service.ota import OTA_STATES
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
    params = fields.Dict(keys=fields.String(), load_default=dict)
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


class RolloutCreateSchema(ma.Schema):
    """POST /ota/rollouts: the firmware and the target devices (device_ids or a device type filter)."""

    fw_version = fields.String(required=True, validate=validate.Length(min=1, max=64))
    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    sha256 = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"))
    size_bytes = fields.Integer(required=True, validate=validate.Range(min=1, max=2**40))
    device_ids = fields.List(fields.UUID(), validate=validate.Length(min=1, max=10000))
    device_type = fields.String(validate=validate.Length(min=1, max=64))
    device_type_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(STATUSES))
    expires_in_s = fields.Integer(load_default=3600, validate=validate.Range(min=1, max=7 * 86400))

    @ma.validates_schema
    def _targets(self, data, **_kwargs):
        if not {"device_ids", "device_type", "device_type_id"} & set(data):
            raise ma.ValidationError("Give device_ids, device_type or device_type_id", "device_ids")


class RolloutSummarySchema(ma.Schema):
    """Per-state device counts of a rollout."""

    total = fields.Integer()
    states = fields.Dict(keys=fields.String(validate=validate.OneOf(OTA_STATES)), values=fields.Integer())
    finished = fields.Integer()
    complete = fields.Boolean()
    success_pct = fields.Float()
    progress_pct = fields.Float()


class RolloutSchema(ma.Schema):
    """An OTA rollout with its progress summary."""

    id = fields.UUID()
    fw_version = fields.String()
    url = fields.String()
    sha256 = fields.String()
    size_bytes = fields.Integer()
    created_by = fields.String(allow_none=True)
    created_at = Timestamp()
    summary = fields.Nested(RolloutSummarySchema)
    sent = fields.Integer(metadata={"description": "Commands the broker acknowledged (creation only)"})


class OtaDeviceStateSchema(ma.Schema):
    """One device's progress in a rollout (written by the collector from ota/status reports)."""

    device_id = fields.String()
    device_uuid = fields.UUID()
    cmd_id = fields.UUID()
    state = fields.String(validate=validate.OneOf(OTA_STATES))
    progress_pct = fields.Float()
    detail = fields.String(allow_none=True)
    updated_at = Timestamp()
    command_status = fields.String(allow_none=True)


RolloutPageSchema = page_schema(RolloutSchema)
OtaDeviceStatePageSchema = page_schema(OtaDeviceStateSchema)
RolloutListArgs = list_args("RolloutListArgs", ("created_at", "fw_version"), "-created_at",
                            fw_version=fields.String(validate=validate.Length(min=1, max=64)))
OtaStateListArgs = list_args("OtaStateListArgs", ("device_id", "state", "progress_pct", "updated_at"), "device_id",
                             state=fields.String(validate=validate.OneOf(OTA_STATES)))
