"""Firmware image schemas."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.common import Timestamp, list_args, page_schema

FW_VERSION = validate.Regexp(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$", error="Must be semver.")


class FirmwareUploadArgs(ma.Schema):
    """POST /firmware query string (a multipart upload may give fw_version as a form field instead)."""

    fw_version = fields.String(validate=FW_VERSION)
    filename = fields.String(validate=validate.Length(min=1, max=255))


class FirmwareSchema(ma.Schema):
    """An uploaded image; sha256 and size_bytes were computed by the server."""

    id = fields.UUID()
    fw_version = fields.String()
    filename = fields.String(allow_none=True)
    sha256 = fields.String()
    size_bytes = fields.Integer()
    uploaded_by = fields.String(allow_none=True)
    created_at = Timestamp()


FirmwarePageSchema = page_schema(FirmwareSchema)
FirmwareListArgs = list_args("FirmwareListArgs", ("created_at", "fw_version"), "-created_at",
                             fw_version=fields.String(validate=validate.Length(min=1, max=64)))
