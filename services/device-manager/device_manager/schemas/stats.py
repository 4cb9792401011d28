"""Dashboard figures."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate


def _counts(*keys: str) -> type[ma.Schema]:
    return type("Counts" + "".join(k.title() for k in keys[:2]), (ma.Schema,),
                {k: fields.Integer(required=True) for k in keys})


class DeviceStatsSchema(ma.Schema):
    """Devices by registry status and by connection status."""

    total = fields.Integer(required=True)
    by_status = fields.Nested(_counts("active", "inactive", "maintenance", "decommissioned"), required=True)
    by_connection = fields.Nested(_counts("online", "offline", "unknown"), required=True)


class EventStatsSchema(ma.Schema):
    """Unresolved events."""

    open_by_severity = fields.Nested(_counts("info", "warning", "critical"), required=True)
    by_status = fields.Nested(_counts("open", "acknowledged"), required=True)


class IngestStatsSchema(ma.Schema):
    """Accepted (stored) and rejected (dead-lettered) messages over the last window_s seconds."""

    window_s = fields.Integer(required=True)
    datagrams = fields.Integer(required=True)
    measurements = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    datagrams_per_s = fields.Float(required=True)
    measurements_per_s = fields.Float(required=True)
    rejected_per_s = fields.Float(required=True)
    reject_reasons = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class StatsSchema(ma.Schema):
    """Fleet, events and pipeline at a glance."""

    devices = fields.Nested(DeviceStatsSchema, required=True)
    events = fields.Nested(EventStatsSchema, required=True)
    ingest = fields.Nested(IngestStatsSchema, required=True)
    notifications = fields.Nested(_counts("pending", "sent", "failed"), required=True)
    dead_letters = fields.Nested(_counts("parked", "replayed", "discarded"), required=True)


class StatsArgs(ma.Schema):
    """GET /stats."""

    window_s = fields.Integer(load_default=300, validate=validate.Range(min=10, max=3600),
                              metadata={"description": "Rate window in seconds (default 300)"})
