"""Raw archived messages query arguments."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.text import Text, UtcDateTime

MAX_LIMIT = 1000


class RawArgs(ma.Schema):
    """GET /devices/{id}/raw."""

    start = UtcDateTime(data_key="from", metadata={"description": "Inclusive, device time; default to - 24 h"})
    end = UtcDateTime(data_key="to", metadata={"description": "Exclusive; default now; at most 31 days after from"})
    limit = fields.Integer(load_default=MAX_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT),
                           metadata={"description": f"Messages per response, at most {MAX_LIMIT}"})
    after = Text(validate=validate.Length(max=200),
                 metadata={"description": "Continue after this cursor (the `Link: rel=next` header gives it)"})
