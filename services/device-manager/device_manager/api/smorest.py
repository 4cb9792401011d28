"""flask-smorest set-up for the JSON API: the strict argument parser and the Api documenting the error format."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Api, Blueprint
from webargs.flaskparser import FlaskParser

from device_manager.schemas.common import ErrorSchema


class StrictParser(FlaskParser):
    """webargs parser that leaves unknown-field handling to the schema (marshmallow RAISE -> 422) everywhere,
    including the query string, where webargs would otherwise silently drop unknown parameters."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}

    def pre_load(self, location_data, *, schema, req, location):
        """Reject text PostgreSQL cannot store (NUL, lone surrogates) as a 422 before any schema sees it."""
        errors = _bad_text(location_data.to_dict(flat=False) if hasattr(location_data, "to_dict") else location_data)
        if errors:
            raise ma.ValidationError(errors)
        return super().pre_load(location_data, schema=schema, req=req, location=location)


def _bad_text(value):
    """Field errors (nested like the input) for strings with NUL or unencodable characters; None when clean."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return ["Contains characters that are not valid UTF-8."]
        return ["Must not contain NUL characters."] if "\x00" in value else None
    if isinstance(value, dict):
        found = {k: e for k, v in value.items() if (e := _bad_text(k) or _bad_text(v))}
        return found or None
    if isinstance(value, list | tuple):
        found = {i: e for i, v in enumerate(value) if (e := _bad_text(v))}
        return found or None
    return None


# Set before any blueprint module is imported: smorest binds the parser when the decorators run.
Blueprint.ARGUMENTS_PARSER = StrictParser()


class IotApi(Api):
    """flask-smorest Api whose documented default error is the project's one error format."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        """Errors are handled by device_manager.api.errors, not by smorest's own format."""
