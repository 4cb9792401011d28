"""Device configuration schemas."""

from __future__ import annotations

import ipaddress
import re

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.commands import CommandSchema
from device_manager.schemas.common import Timestamp, list_args, page_schema

_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$")


def _host(value: str) -> None:
    """A hostname (RFC 1123 labels) or an IPv4/IPv6 address."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        # An all-digit last label is a mistyped address (256.1.1.1), never a name: no top-level domain is numeric.
        if not _HOSTNAME.match(value) or value.rstrip(".").rsplit(".", 1)[-1].isdigit():
            raise ma.ValidationError("Must be a hostname or an IP address.") from None


class BrokerSchema(ma.Schema):
    """One MQTT broker a device publishes to."""

    host = fields.String(required=True, validate=[validate.Length(min=1, max=253), _host],
                         metadata={"description": "Hostname or IP address"})
    port = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=65535))


class DesiredConfigSchema(ma.Schema):
    """The device spec v2 update_config keys (each optional) plus the IoT Hub extension samples_per_datagram."""

    sampling_cadence_ms = fields.Integer(strict=True, validate=validate.Range(min=100, max=60000))
    send_interval_s = fields.Integer(strict=True, validate=validate.Range(min=1, max=3600))
    hello_interval_s = fields.Integer(strict=True, validate=validate.Range(min=5, max=3600))
    brokers = fields.List(fields.Nested(BrokerSchema), validate=validate.Length(min=1, max=5),
                          metadata={"description": "Every broker the device publishes each message to"})
    tls_enabled = fields.Boolean()
    samples_per_datagram = fields.Integer(strict=True, validate=validate.Range(min=0, max=200), metadata={
        "description": "IoT Hub extension (the simulator): 0 means send_interval / sampling cadence"})

    @ma.validates_schema
    def _not_empty(self, data, **_kwargs):
        if not data:
            raise ma.ValidationError("Give at least one setting")


class ConfigHistorySchema(ma.Schema):
    """One update_config the device accepted, as the collector recorded it from the ack."""

    id = fields.Integer()
    cmd_id = fields.UUID()
    applied = fields.Dict(metadata={"description": "The params the device accepted"})
    config = fields.Dict(metadata={"description": "The reported configuration after applying them"})
    config_version = fields.Integer(allow_none=True,
                                    metadata={"description": "Desired version sent (null: a direct command)"})
    applied_at = Timestamp(metadata={"description": "Device time of the ack"})
    recorded_at = Timestamp()


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


ConfigHistoryPageSchema = page_schema(ConfigHistorySchema)
ConfigHistoryListArgs = list_args("ConfigHistoryListArgs", ("applied_at", "recorded_at"), "-applied_at")
