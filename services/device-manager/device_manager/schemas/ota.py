"""OTA rollout schemas."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.common import Timestamp, list_args, page_schema
from device_manager.schemas.devices import STATUSES
from device_manager.service.ota import OTA_STATES


class RolloutCreateSchema(ma.Schema):
    """POST /ota/rollouts: the firmware (an uploaded firmware_id, or url + sha256 + size_bytes of an image elsewhere)
    and the target devices (device_ids or a device type filter)."""

    firmware_id = fields.UUID(metadata={"description": "An image uploaded to /firmware: the devices get a pre-signed "
                                                       "URL that expires (FIRMWARE_URL_TTL_S) and its sha256/size"})
    fw_version = fields.String(validate=validate.Length(min=1, max=64))
    url = fields.Url(schemes={"http", "https"}, require_tld=False)
    sha256 = fields.String(validate=validate.Regexp(r"^[0-9a-f]{64}$"))
    size_bytes = fields.Integer(validate=validate.Range(min=1, max=2**40))
    device_ids = fields.List(fields.UUID(), validate=validate.Length(min=1, max=10000))
    device_type = fields.String(validate=validate.Length(min=1, max=64))
    device_type_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(STATUSES))
    expires_in_s = fields.Integer(load_default=3600, validate=validate.Range(min=1, max=7 * 86400))

    @ma.validates_schema
    def _image(self, data, **_kwargs):
        external = ("fw_version", "url", "sha256", "size_bytes")
        if "firmware_id" in data:
            if {"url", "sha256", "size_bytes"} & set(data):
                raise ma.ValidationError("Give firmware_id or url/sha256/size_bytes, not both", "firmware_id")
        elif missing := [k for k in external if k not in data]:
            raise ma.ValidationError({k: ["Required without firmware_id."] for k in missing})

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
    firmware_id = fields.UUID(allow_none=True)
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
