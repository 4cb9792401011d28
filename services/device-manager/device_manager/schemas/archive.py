"""Raw archive listing arguments and items."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.archive.keys import CATEGORIES
from device_manager.schemas.common import Timestamp
from device_manager.schemas.text import Text, UtcDateTime


class ArchiveArgs(ma.Schema):
    """GET /devices/{id}/archive."""

    category = fields.List(Text(validate=validate.OneOf(CATEGORIES)), validate=validate.Length(max=5),
                           metadata={"description": "Message type; repeat for several; default all"})
    start = UtcDateTime(metadata={"description": "Default end - 24 h"})
    end = UtcDateTime(metadata={"description": "Default now; at most 31 days after start"})
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=1000))


class ArchiveObjectSchema(ma.Schema):
    """One archived window of raw messages (NDJSON, one IngestMessage per line)."""

    key = Text(required=True, metadata={"description": "Download at .../archive/{key}"})
    category = Text(required=True)
    window_start = Timestamp(required=True)
    size = fields.Integer(required=True)
    last_modified = Timestamp(allow_none=True)
    content_type = Text(required=True)


class ArchiveListSchema(ma.Schema):
    """The archived objects of a device whose window overlaps [start, end), oldest first."""

    device_id = Text(required=True)
    start = Timestamp(required=True)
    end = Timestamp(required=True)
    items = fields.List(fields.Nested(ArchiveObjectSchema), required=True)
    truncated = fields.Boolean(required=True, metadata={"description": "More objects exist than limit"})
