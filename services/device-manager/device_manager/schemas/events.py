"""Event schemas: list filters, the event, and the acknowledge/resolve bodies."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.common import Timestamp, list_args, page_schema
from device_manager.schemas.rules import IDENT, KINDS, SEVERITIES
from device_manager.schemas.text import Text, UtcDateTime

STATUSES = ("open", "acknowledged", "resolved")


class EventSchema(ma.Schema):
    """An event as returned by the API."""

    id = fields.UUID(required=True)
    rule_id = fields.UUID(allow_none=True)
    rule_name = Text(required=True)
    rule_kind = Text(required=True)
    device_id = Text(required=True)
    device_type = Text(allow_none=True)
    severity = Text(required=True, validate=validate.OneOf(SEVERITIES))
    message = Text(required=True)
    status = Text(required=True, validate=validate.OneOf(STATUSES))
    first_ts = Timestamp(required=True)
    last_ts = Timestamp(required=True)
    count = fields.Integer(required=True)
    trigger_values = fields.Dict(required=True)
    last_value = fields.Float(allow_none=True)
    acknowledged_by = Text(allow_none=True)
    acknowledged_at = Timestamp(allow_none=True)
    resolved_by = Text(allow_none=True)
    resolved_at = Timestamp(allow_none=True)
    resolution_comment = Text(allow_none=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)


class AcknowledgeSchema(ma.Schema):
    """POST /events/{id}/acknowledge: no fields (an empty object or no body)."""


class ResolveSchema(ma.Schema):
    """POST /events/{id}/resolve."""

    comment = Text(required=True, validate=validate.Length(min=1, max=2000))


def ordered_range(base: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A subclass of a list-args schema that refuses since >= until."""

    def _order(self, data, **_kwargs):
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ma.ValidationError("since must be before until", "since")

    return type(name, (base,), {"_order": ma.validates_schema(_order)})


EventPageSchema = page_schema(EventSchema)
EventListArgs = ordered_range(list_args(
    "EventListArgsBase", ("last_ts", "first_ts", "created_at", "count", "severity", "device_id"), "-last_ts",
    status=fields.List(Text(validate=validate.OneOf(STATUSES)), validate=validate.Length(max=3),
                       metadata={"description": "Repeat for several"}),
    severity=fields.List(Text(validate=validate.OneOf(SEVERITIES)), validate=validate.Length(max=3),
                         metadata={"description": "Repeat for several"}),
    device_id=Text(validate=IDENT),
    device_type=Text(validate=IDENT),
    rule_id=fields.UUID(),
    rule_kind=Text(validate=validate.OneOf(KINDS)),
    since=UtcDateTime(metadata={"description": "last_ts >= since (ISO 8601 with offset)"}),
    until=UtcDateTime(metadata={"description": "last_ts < until"}),
), "EventListArgs")
