"""Subscription schemas: the target must suit the channel; the secret is write-only."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.common import Timestamp, list_args, page_schema
from device_manager.schemas.rules import IDENT, SEVERITIES
from device_manager.schemas.text import Text

CHANNELS = ("log", "webhook", "email")
_URL = validate.URL(schemes={"http", "https"}, require_tld=False, error="Must be an http(s) URL.")
_EMAIL = validate.Email(error="Must be an email address.")
_NAME = validate.Length(min=1, max=200)
_SECRET = validate.Length(min=16, max=256, error="Must be 16 to 256 characters.")


class SubscriptionSchema(ma.Schema):
    """A subscription as returned by the API (never its secret)."""

    id = fields.UUID(required=True)
    name = Text(required=True)
    channel = Text(required=True, validate=validate.OneOf(CHANNELS))
    target = Text(required=True)
    has_secret = fields.Boolean(required=True, metadata={"description": "Whether a webhook signing secret is set"})
    min_severity = Text(required=True, validate=validate.OneOf(SEVERITIES))
    device_type = Text(allow_none=True)
    device_id = Text(allow_none=True)
    rule_id = fields.UUID(allow_none=True)
    enabled = fields.Boolean(required=True)
    created_by = Text(allow_none=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)


class _SubscriptionFields(ma.Schema):
    name = Text(validate=_NAME)
    channel = Text(validate=validate.OneOf(CHANNELS))
    target = Text(validate=validate.Length(min=1, max=2000))
    secret = Text(allow_none=True, load_only=True, validate=_SECRET,
                           metadata={"description": "Webhook HMAC key; write-only, null clears it"})
    min_severity = Text(validate=validate.OneOf(SEVERITIES))
    device_type = Text(allow_none=True, validate=IDENT)
    device_id = Text(allow_none=True, validate=IDENT)
    rule_id = fields.UUID(allow_none=True)
    enabled = fields.Boolean()


class SubscriptionCreateSchema(_SubscriptionFields):
    """POST /subscriptions."""

    name = Text(required=True, validate=_NAME)
    channel = Text(required=True, validate=validate.OneOf(CHANNELS))
    target = Text(required=True, validate=validate.Length(min=1, max=2000))

    @ma.validates_schema
    def _target(self, data, **_kwargs):
        check_target(data)


class SubscriptionUpdateSchema(_SubscriptionFields):
    """PATCH /subscriptions/{id}: any subset; the merged channel/target/secret are checked together."""


def target_errors(data: dict) -> dict:
    """webhook: http(s) URL; email: an address; log: any label. A secret only signs webhooks. Field errors."""
    channel, target = data.get("channel"), data.get("target")
    errors = {}
    try:
        if channel == "webhook":
            _URL(target)
        elif channel == "email":
            _EMAIL(target)
    except ma.ValidationError as exc:
        errors["target"] = exc.messages
    if channel != "webhook" and data.get("secret"):
        errors["secret"] = ["Only webhook subscriptions take a secret."]
    return errors


def check_target(data: dict) -> None:
    """target_errors as a marshmallow error."""
    errors = target_errors(data)
    if errors:
        raise ma.ValidationError(errors)


SubscriptionPageSchema = page_schema(SubscriptionSchema)
SubscriptionListArgs = list_args(
    "SubscriptionListArgs", ("name", "channel", "min_severity", "created_at", "updated_at"), "name",
    channel=Text(validate=validate.OneOf(CHANNELS)),
    min_severity=Text(validate=validate.OneOf(SEVERITIES)),
    device_type=Text(validate=IDENT),
    device_id=Text(validate=IDENT),
    rule_id=fields.UUID(),
    enabled=fields.Boolean(),
    q=Text(validate=validate.Length(min=1, max=100), metadata={"description": "Substring of name or target"}),
)
