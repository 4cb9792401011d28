"""Flask extensions, created unbound and bound in create_app, and the one accessor transports use for services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app, request
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter

if TYPE_CHECKING:
    from device_manager.settings import Settings
    from device_manager.wiring import Services


def _client_ip() -> str:
    return request.remote_addr or "unknown"


jwt = JWTManager()
limiter = Limiter(key_func=_client_ip, default_limits=[])  # storage: RATELIMIT_STORAGE_URI, set by create_app


def services() -> Services:
    """The current app's services container (built by create_app)."""
    return current_app.extensions["device_manager"]


def get_settings() -> Settings:
    """The current app's Settings."""
    return services().settings
