"""Flask extensions, created unbound and bound in create_app (the smorest Api per app), plus the app context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import marshmallow as ma
from flask import current_app, request
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_smorest import Api, Blueprint
from webargs.flaskparser import FlaskParser

from device_manager.repositories.counts import CountCache
from device_manager.schemas.common import ErrorSchema
from device_manager.settings import Settings
from iothub.db import Database


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
        """Errors are handled by device_manager.errors, not by smorest's own format."""


def _client_ip() -> str:
    return request.remote_addr or "unknown"


jwt = JWTManager()
limiter = Limiter(key_func=_client_ip, storage_uri="memory://", default_limits=[])


@dataclass
class Context:
    """What the routes need from the composition root: settings, database, command publisher, ready checks."""

    settings: Settings
    db: Database
    publisher: object  # device_manager.mqtt.CommandPublisher (or any object with its publish methods)
    checks: dict[str, Callable[[], bool]] = field(default_factory=dict)
    counts: CountCache = field(default_factory=CountCache)  # large list totals, reused for a few seconds


def ctx() -> Context:
    """The current app's Context."""
    return current_app.extensions["device_manager"]


def get_db() -> Database:
    """The current app's Database."""
    return ctx().db


def get_counts() -> CountCache:
    """The current app's cache of large list totals."""
    return ctx().counts


def get_settings() -> Settings:
    """The current app's Settings."""
    return ctx().settings
