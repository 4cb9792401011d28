"""The list fast path and the orjson responses render exactly what marshmallow and Flask's encoder render."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import marshmallow as ma
from marshmallow import fields

from device_manager.schemas.common import Items, page_schema
from device_manager.schemas.devices import DeviceSchema

ROWS = [
    {"id": uuid.uuid4(), "device_id": "m-1", "name": "Meter 1", "serial_number": None, "device_type_id": uuid.uuid4(),
     "device_type": "power_meter_dc", "location": "Hall 2", "status": "active", "metadata": {"line": "L1", "n": 3},
     "connection_status": "online", "last_seen": datetime(2026, 11, 30, 12, 0, 1, 250000, tzinfo=UTC),
     "fw_version": "1.2.3", "has_ingest_token": False, "created_at": datetime(2026, 1, 1),  # naive: read as UTC
     "updated_at": datetime(2026, 11, 30, 13, 0, tzinfo=UTC), "not_in_schema": "ignored"},
    {"id": uuid.uuid4(), "device_id": "m-2", "name": "Meter 2", "metadata": {}, "status": "inactive",
     "has_ingest_token": True, "last_seen": None},  # absent keys are left out, as marshmallow does
]


def _page(rows):
    return {"items": rows, "total": len(rows), "page": 1, "page_size": 50, "links": {"next": None, "prev": None}}


def test_items_fast_path_equals_marshmallow():
    schema = page_schema(DeviceSchema)()
    assert schema.fields["items"]._plan is not None  # the fast path is taken for devices
    assert schema.dump(_page(ROWS))["items"] == DeviceSchema(many=True).dump(ROWS)


def test_items_with_dump_hooks_take_the_ordinary_path():
    class Hooked(ma.Schema):
        name = fields.String()

        @ma.post_dump
        def shout(self, data, **kwargs):
            return {**data, "name": data["name"].upper()}

    field = Items(fields.Nested(Hooked))
    assert field._plan is None
    assert field.serialize("items", {"items": [{"name": "a"}]}) == [{"name": "A"}]


def test_orjson_responses_equal_flask_documents(app):
    doc = {"b": 1, "a": [1.5, None, True, "é"], "when": datetime(2026, 11, 30, tzinfo=UTC), "id": uuid.UUID(int=5),
           "big": 10**30}
    with app.app_context():
        fast = app.json.response({k: v for k, v in doc.items() if k != "big"})
        fallback = app.json.response(doc)  # beyond orjson's 64-bit integers: Flask's encoder answers
    expected = {"a": [1.5, None, True, "é"], "b": 1, "id": str(uuid.UUID(int=5)),
                "when": "Mon, 30 Nov 2026 00:00:00 GMT"}
    assert json.loads(fast.get_data()) == expected
    assert list(json.loads(fast.get_data())) == sorted(expected)
    assert json.loads(fallback.get_data()) == {**expected, "big": 10**30}
