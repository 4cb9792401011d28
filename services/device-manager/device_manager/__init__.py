"""IoT Hub device manager: the operators' REST API (`gunicorn "device_manager:create_app()"`)."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from typing import Any

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from device_manager import api as blueprints
from device_manager import console, metrics
from device_manager.api import errors as api_errors
from device_manager.api.errors import error_response
from device_manager.api.smorest import IotApi
from device_manager.api.system import bp as system_bp
from device_manager.auth import passwords
from device_manager.auth import tokens as jwt_setup
from device_manager.extensions import jwt, limiter
from device_manager.json_provider import OrjsonProvider
from device_manager.mqtt import CommandPublisher
from device_manager.probes import tcp_reachable
from device_manager.settings import Settings, load
from device_manager.wiring import Services, build
from iothub import logs
from iothub.db import Database
from iothub.errors import Unavailable
from iothub.settings import Env

log = logging.getLogger("device_manager")
_BODY_METHODS = {"POST", "PUT", "PATCH"}
_RAW_BODY_PATHS = {"/api/v1/firmware"}  # firmware uploads: application/octet-stream or multipart


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app; `config` may hold `environ` (a mapping read instead of os.environ), Settings field
    overrides by their lowercase names, and upper-case Flask config keys."""
    config = dict(config or {})
    settings = _settings(config)
    app = Flask(__name__, static_url_path="/api/v1/static")
    app.json = OrjsonProvider(app)
    app.config.update(_flask_config(settings))
    app.config.update({k: v for k, v in config.items() if k.isupper()})
    if settings.trusted_proxy_hops:  # else X-Forwarded-* is the client's word and ignored
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_hops, x_proto=settings.trusted_proxy_hops)
    if not app.testing:
        logs.configure("device-manager", settings.log_level)
    passwords.configure(app.config.get("PASSWORD_HASH_TIME_COST"), app.config.get("PASSWORD_HASH_MEMORY_COST"))

    # keep_idle: gunicorn threads share the pool; without it psycopg2 closed and reopened connections under load.
    db = Database(settings.database_url, maxconn=settings.db_pool_max, keep_idle=settings.db_pool_max,
                  application_name="device-manager")
    publisher = CommandPublisher(settings.mqtt_host, settings.mqtt_port, client_id=settings.mqtt_client_id,
                                 auth=settings.mqtt_auth,
                                 topic_prefix=settings.mqtt_topic_prefix, keepalive=settings.mqtt_keepalive,
                                 timeout=settings.mqtt_publish_timeout_s, qos=settings.command_qos)
    services = build(settings, db, publisher, checks={"database": db.ping, "mqtt": publisher.is_connected,
                                                      "amqp": tcp_reachable(settings.amqp_url, 5672)})
    app.extensions["device_manager"] = services

    api = IotApi()
    api.init_app(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    jwt.init_app(app)
    jwt_setup.register(jwt)
    limiter.init_app(app)
    api_errors.register(app)
    metrics.install(app)
    app.before_request(_require_json_body)
    app.register_blueprint(system_bp)
    blueprints.register(api)
    app.extensions["device_manager_api"] = api
    console.init_app(app, settings.jwt_secret_key)  # the HTML transport at /console/, same process
    _bootstrap_admin(services)
    return app


def _settings(config: dict[str, Any]) -> Settings:
    environ = config.pop("environ", None)
    settings = load(Env(environ) if environ is not None else None)
    fields = {f.name for f in dataclasses.fields(Settings)}
    overrides = {k: config.pop(k) for k in list(config) if k in fields}
    return dataclasses.replace(settings, **overrides)


def _flask_config(s: Settings) -> dict[str, Any]:
    return {
        "JWT_SECRET_KEY": s.jwt_secret_key,
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=s.access_token_minutes),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=s.refresh_token_days),
        "JWT_TOKEN_LOCATION": ["headers"],
        "MAX_CONTENT_LENGTH": s.max_body_bytes,
        "LOGIN_RATE_LIMIT": s.login_rate_limit,
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_STORAGE_URI": s.ratelimit_storage_uri,
        "RATELIMIT_KEY_PREFIX": s.ratelimit_key_prefix,
        # A Redis outage leaves each process its own in-memory limit rather than failing every login.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "API_TITLE": "IoT Hub API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "API_SPEC_OPTIONS": {"security": [{"bearerAuth": []}],
                             "info": {"description": "Operators' REST API of IoT Hub. Errors: "
                                                     '{"error": {"code", "message", "details"}}.'}},
    }


def _require_json_body():
    """A request body on POST/PUT/PATCH must be JSON (415 otherwise); bodiless requests pass."""
    if request.method not in _BODY_METHODS or request.path in _RAW_BODY_PATHS:
        return None
    if request.path.startswith("/console/"):  # console forms are HTML
        return None
    has_body = (request.content_length or 0) > 0 or "chunked" in request.headers.get("Transfer-Encoding", "")
    if has_body and not request.is_json:
        return error_response(415, "unsupported_media_type", "Request bodies must be application/json",
                              {"content_type": request.content_type})
    return None


def _bootstrap_admin(services: Services) -> None:
    """Create the first admin from ADMIN_EMAIL/ADMIN_PASSWORD when no admin exists yet."""
    settings = services.settings
    if not (settings.admin_email and settings.admin_password):
        return
    try:
        if services.users.ensure_admin(settings.admin_email, settings.admin_password):
            log.info("created the first admin", extra={"email": settings.admin_email})
    except Unavailable as exc:
        log.warning("could not check for an admin at start-up", extra={"error": str(exc)})
