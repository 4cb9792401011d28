"""Notification schemas (read-only)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.common import Timestamp, list_args, page_schema
from device_manager.schemas.events import ordered_range
from device_manager.schemas.subscriptions import CHANNELS
from device_manager.schemas.text import Text, UtcDateTime

STATUSES = ("pending", "sent", "failed")


class NotificationSchema(ma.Schema):
    """A notification: one event change for one subscription."""

    id = fields.UUID(required=True)
    change_id = fields.UUID(required=True)
    event_id = fields.UUID(required=True)
    subscription_id = fields.UUID(allow_none=True)
    channel = Text(required=True)
    target = Text(required=True)
    status = Text(required=True, validate=validate.OneOf(STATUSES))
    attempts = fields.Integer(required=True)
    last_error = Text(allow_none=True)
    next_attempt_at = Timestamp(allow_none=True)
    sent_at = Timestamp(allow_none=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)


class AttemptSchema(ma.Schema):
    """One delivery attempt."""

    attempt = fields.Integer(required=True)
    status = Text(required=True, validate=validate.OneOf(STATUSES))
    response_code = fields.Integer(allow_none=True)
    error = Text(allow_none=True)
    started_at = Timestamp(required=True)
    finished_at = Timestamp(allow_none=True)


class NotificationDetailSchema(NotificationSchema):
    """A notification with its attempts, oldest first."""

    attempt_log = fields.List(fields.Nested(AttemptSchema), required=True)


NotificationPageSchema = page_schema(NotificationSchema)
NotificationListArgs = ordered_range(list_args(
    "NotificationListArgsBase", ("created_at", "updated_at", "attempts", "status"), "-created_at",
    event_id=fields.UUID(),
    subscription_id=fields.UUID(),
    status=Text(validate=validate.OneOf(STATUSES)),
    channel=Text(validate=validate.OneOf(CHANNELS)),
    since=UtcDateTime(metadata={"description": "created_at >= since"}),
    until=UtcDateTime(metadata={"description": "created_at < until"}),
), "NotificationListArgs")
