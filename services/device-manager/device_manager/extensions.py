"""Flask extensions, created unbound and bound in create_app (the smorest Api per app), plus the app context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app, request
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_smorest import Api, Blueprint
from webargs.flaskparser import FlaskParser

from device_manager.schemas.common import ErrorSchema
from device_manager.settings import Settings
from iothub.db import Database


class StrictParser(FlaskParser):
    """webargs parser that leaves unknown-field handling to the schema (marshmallow RAISE -> 422) everywhere,
    including the query string, where webargs would otherwise silently drop unknown parameters."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}


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


def ctx() -> Context:
    """The current app's Context."""
    return current_app.extensions["device_manager"]


def get_db() -> Database:
    """The current app's Database."""
    return ctx().db


def get_settings() -> Settings:
    """The current app's Settings."""
    return ctx().settings
