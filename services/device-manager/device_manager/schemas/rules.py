"""Rule schemas: threshold rules in full, built-in kinds only tunable."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.common import Timestamp, list_args, page_schema
from device_manager.schemas.text import JsonObject, Text
from device_manager.service.rules import scope_errors

KINDS = ("threshold", "seq_gap", "offline", "ota_failed", "command_timeout", "redundancy")
SCOPES = ("device", "device_type", "all")
OPERATORS = ("gt", "lt", "gte", "lte", "eq", "neq")
SEVERITIES = ("info", "warning", "critical")
IDENT = validate.Regexp(r"^[A-Za-z0-9_-]{1,64}$", error="1-64 letters, digits, _ or -")
METRIC = validate.Length(min=1, max=64)
SECONDS = validate.Range(min=0, max=30 * 86400)


def _number(minimum: float = -1e15, **kwargs):
    return fields.Float(allow_nan=False, validate=validate.Range(min=minimum, max=1e15), **kwargs)


class RuleSchema(ma.Schema):
    """A rule as returned by the API."""

    id = fields.UUID(required=True)
    name = Text(required=True)
    description = Text(required=True)
    kind = Text(required=True, validate=validate.OneOf(KINDS))
    builtin = fields.Boolean(required=True, metadata={"description": "Built-in kinds are tunable, not deletable"})
    scope = Text(required=True)
    device_id = Text(allow_none=True)
    device_type = Text(allow_none=True)
    metric = Text(allow_none=True)
    operator = Text(allow_none=True)
    threshold = fields.Float(allow_none=True)
    severity = Text(required=True)
    message_template = Text(required=True)
    for_seconds = fields.Integer(required=True)
    clear_hysteresis = fields.Float(required=True)
    renotify_seconds = fields.Integer(required=True)
    cooldown_seconds = fields.Integer(required=True)
    params = fields.Dict(required=True)
    enabled = fields.Boolean(required=True)
    created_by = Text(allow_none=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)


class _RuleFields(ma.Schema):
    name = Text(validate=validate.Length(min=1, max=200))
    description = Text(validate=validate.Length(max=2000))
    scope = Text(validate=validate.OneOf(SCOPES))
    device_id = Text(allow_none=True, validate=IDENT)
    device_type = Text(allow_none=True, validate=IDENT)
    metric = Text(validate=METRIC)
    operator = Text(validate=validate.OneOf(OPERATORS))
    threshold = _number()
    severity = Text(validate=validate.OneOf(SEVERITIES))
    message_template = Text(validate=validate.Length(min=1, max=1000))
    for_seconds = fields.Integer(validate=SECONDS)
    clear_hysteresis = _number(0)
    renotify_seconds = fields.Integer(validate=SECONDS)
    cooldown_seconds = fields.Integer(validate=SECONDS)
    params = JsonObject(keys=Text(validate=validate.Length(min=1, max=64)))
    enabled = fields.Boolean()


class RuleCreateSchema(_RuleFields):
    """POST /rules: a threshold rule (built-in kinds exist once and cannot be created)."""

    name = Text(required=True, validate=validate.Length(min=1, max=200))
    metric = Text(required=True, validate=METRIC)
    operator = Text(required=True, validate=validate.OneOf(OPERATORS))
    threshold = _number(required=True)
    scope = Text(load_default="all", validate=validate.OneOf(SCOPES))

    @ma.validates_schema
    def _scope(self, data, **_kwargs):
        check_scope(data)


class RuleUpdateSchema(_RuleFields):
    """PATCH /rules/{id}: any subset; built-in kinds accept only description, params, severity, message_template,
    renotify_seconds, cooldown_seconds and enabled."""


def check_scope(data: dict) -> None:
    """The scope rule of the domain as a marshmallow error."""
    errors = scope_errors(data)
    if errors:
        raise ma.ValidationError(errors)


RulePageSchema = page_schema(RuleSchema)
RuleListArgs = list_args(
    "RuleListArgs", ("name", "kind", "severity", "created_at", "updated_at"), "name",
    kind=Text(validate=validate.OneOf(KINDS)),
    scope=Text(validate=validate.OneOf(SCOPES)),
    severity=Text(validate=validate.OneOf(SEVERITIES)),
    enabled=fields.Boolean(),
    builtin=fields.Boolean(metadata={"description": "true: only built-in kinds; false: only threshold rules"}),
    metric=Text(validate=METRIC),
    device_id=Text(validate=IDENT),
    device_type=Text(validate=IDENT),
    q=Text(validate=validate.Length(min=1, max=100), metadata={"description": "Substring of name or "
                                                                                       "description"}),
)
