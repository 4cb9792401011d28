"""Input fields PostgreSQL can store: text and JSON without NUL characters (psycopg2 refuses them with a 500)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import marshmallow as ma
from marshmallow import fields

NUL_ERROR = "Must not contain NUL characters."
MIN_YEAR, MAX_YEAR = 1970, 9000
RANGE_ERROR = f"Must be between the years {MIN_YEAR} and {MAX_YEAR}."


class Text(fields.String):
    """A string without NUL characters."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ma.ValidationError(NUL_ERROR)
        return text


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class JsonObject(fields.Dict):
    """A JSON object storable in jsonb (no NUL in any key or string)."""

    def _deserialize(self, value, attr, data, **kwargs):
        obj = super()._deserialize(value, attr, data, **kwargs)
        if _has_nul(obj):
            raise ma.ValidationError(NUL_ERROR)
        return obj


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 time with an offset, normalised to UTC and bounded to years 1970-9000 (PostgreSQL and the
    range arithmetic stay in bounds whatever the offset)."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            parsed = parsed.astimezone(UTC)
        except OverflowError:
            raise ma.ValidationError(RANGE_ERROR) from None
        if not MIN_YEAR <= parsed.year <= MAX_YEAR:
            raise ma.ValidationError(RANGE_ERROR)
        return parsed
