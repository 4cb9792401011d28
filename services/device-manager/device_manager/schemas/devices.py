"""Device schemas."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.common import Timestamp, list_args, page_schema
from device_manager.schemas.credentials import CredentialKindsSchema, IssuedSchema

DEVICE_ID = validate.Regexp(r"^[A-Za-z0-9_-]{1,64}$", error="1-64 letters, digits, _ or -")
STATUSES = ("active", "inactive", "maintenance", "decommissioned")
CONNECTION = ("online", "offline", "unknown")


class DeviceSchema(ma.Schema):
    """A device as returned by the API; connection_status, last_seen, fw_version, broker_connections: collector's."""

    id = fields.UUID(dump_only=True)
    device_id = fields.String(metadata={"description": "MQTT identity"})
    name = fields.String()
    serial_number = fields.String(allow_none=True)
    device_type_id = fields.UUID()
    device_type = fields.String(metadata={"description": "Device type name"})
    location = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf(STATUSES))
    metadata = fields.Dict(keys=fields.String())
    connection_status = fields.String(dump_only=True)
    last_seen = Timestamp(dump_only=True, allow_none=True)
    fw_version = fields.String(dump_only=True, allow_none=True)
    broker_connections = fields.Integer(dump_only=True, allow_none=True,
                                        metadata={"description": "Brokers the device reported being connected to "
                                                                 "in its latest hello"})
    has_ingest_token = fields.Boolean(dump_only=True)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)
    credentials = fields.Nested(IssuedSchema, dump_only=True,
                                metadata={"description": "only in the response that created the device with them"})


class _TypeRef(ma.Schema):
    """Either device_type_id or device_type (the type's name)."""

    device_type_id = fields.UUID()
    device_type = fields.String(validate=validate.Length(min=1, max=64))

    @ma.validates_schema
    def _one_type(self, data, partial=None, **_kwargs):
        both = "device_type_id" in data and "device_type" in data
        if both or (not partial and "device_type_id" not in data and "device_type" not in data):
            raise ma.ValidationError("Give exactly one of device_type_id or device_type", "device_type_id")


class DeviceCreateSchema(_TypeRef):
    """POST /devices (and each item of POST /devices/bulk)."""

    device_id = fields.String(required=True, validate=DEVICE_ID)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    serial_number = fields.String(allow_none=True, load_default=None, validate=validate.Length(min=1, max=100))
    location = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=200))
    status = fields.String(load_default="active", validate=validate.OneOf(STATUSES))
    metadata = fields.Dict(keys=fields.String(), load_default=dict)
    credentials = fields.Nested(CredentialKindsSchema, load_default=None,
                                metadata={"description": "broker credentials to issue with the device; the "
                                                         "response carries their secrets this once"})


class DeviceUpdateSchema(_TypeRef):
    """PATCH /devices/{id}: any subset; device_id (the MQTT identity) cannot change."""

    name = fields.String(validate=validate.Length(min=1, max=200))
    serial_number = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    location = fields.String(allow_none=True, validate=validate.Length(max=200))
    status = fields.String(validate=validate.OneOf(STATUSES))
    metadata = fields.Dict(keys=fields.String())

    @ma.validates_schema
    def _one_type(self, data, **_kwargs):
        if "device_type_id" in data and "device_type" in data:
            raise ma.ValidationError("Give at most one of device_type_id or device_type", "device_type_id")


class DeviceBulkSchema(ma.Schema):
    """POST /devices/bulk: up to BULK_MAX devices, created all or none."""

    devices = fields.List(fields.Nested(DeviceCreateSchema), required=True, validate=validate.Length(min=1))


class DeviceBulkResultSchema(ma.Schema):
    """Result of a bulk create."""

    count = fields.Integer(required=True)
    items = fields.List(fields.Nested(DeviceSchema), required=True)


class IngestTokenSchema(ma.Schema):
    """A freshly generated HTTP ingest token: shown once, stored only as its sha256."""

    device_id = fields.String(required=True)
    token = fields.String(required=True)


DevicePageSchema = page_schema(DeviceSchema)
DeviceListArgs = list_args(
    "DeviceListArgs",
    ("name", "device_id", "serial_number", "status", "connection_status", "last_seen", "created_at", "updated_at"),
    "-created_at",
    device_type_id=fields.UUID(),
    device_type=fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "Type name"}),
    status=fields.String(validate=validate.OneOf(STATUSES)),
    connection_status=fields.String(validate=validate.OneOf(CONNECTION)),
    device_id=fields.String(validate=DEVICE_ID),
    q=fields.String(validate=validate.Length(min=1, max=200), metadata={"description": "Substring of name or serial"}),
)
