"""Dead-letter schemas (admin only)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.common import Timestamp, list_args, page_schema
from device_manager.schemas.events import ordered_range
from device_manager.schemas.text import Text, UtcDateTime

STATUSES = ("parked", "replayed", "discarded")


class DeadLetterSchema(ma.Schema):
    """A parked message, its reason and the start of its body."""

    id = fields.UUID(required=True)
    message_id = Text(allow_none=True)
    source = Text(required=True, metadata={"description": "Queue or ingest path that parked it"})
    reason = Text(required=True)
    detail = Text(required=True)
    exchange = Text(allow_none=True, metadata={"description": "Original exchange; null when rejected at "
                                                                       "the MQTT/HTTP edge (not replayable)"})
    routing_key = Text(allow_none=True, metadata={"description": "Original routing key or MQTT topic"})
    headers = fields.Dict(required=True)
    status = Text(required=True, validate=validate.OneOf(STATUSES))
    received_at = Timestamp(required=True)
    handled_by = Text(allow_none=True)
    handled_at = Timestamp(allow_none=True)
    body_size = fields.Integer(required=True)
    body_preview = Text(required=True, metadata={"description": "First 1 KiB, as text or base64"})
    body_encoding = Text(required=True, validate=validate.OneOf(("text", "base64")))
    body_truncated = fields.Boolean(required=True)


DeadLetterPageSchema = page_schema(DeadLetterSchema)
DeadLetterListArgs = ordered_range(list_args(
    "DeadLetterListArgsBase", ("received_at", "reason", "source", "status"), "-received_at",
    status=Text(validate=validate.OneOf(STATUSES)),
    reason=Text(validate=validate.Length(min=1, max=100)),
    source=Text(validate=validate.Length(min=1, max=200)),
    exchange=Text(validate=validate.Length(min=1, max=200)),
    since=UtcDateTime(metadata={"description": "received_at >= since"}),
    until=UtcDateTime(metadata={"description": "received_at < until"}),
), "DeadLetterListArgs")
