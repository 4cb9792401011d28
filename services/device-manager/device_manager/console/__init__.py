"""The operators' console at /console/: a second thin transport (HTML, htmx) over the same data as the JSON API."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from device_manager.console import blueprint, views

csrf = CSRFProtect()
SESSION_HOURS = 8


def init_app(app: Flask, jwt_secret: str) -> None:
    """Register the console: a session cookie of its own (Secure, HttpOnly, SameSite=Lax) and CSRF on its forms
    only; the JSON API keeps bearer tokens and is never CSRF-checked."""
    # A key of its own, derived so no second secret must be configured; never the JWT signing key itself.
    key = hmac.new(jwt_secret.encode(), b"iothub-console-session", hashlib.sha256).hexdigest()
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = key
    app.config.update(SESSION_COOKIE_NAME="iothub_console", SESSION_COOKIE_SECURE=True,
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_PATH="/console", PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
                      SESSION_REFRESH_EACH_REQUEST=False,  # 8 hours from sign-in, not from the last click
                      WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=SESSION_HOURS * 3600)
    csrf.init_app(app)
    bp = blueprint.build()
    bp.before_request(_check_csrf)
    views.register(bp)
    app.register_blueprint(bp)


def _check_csrf() -> None:
    """Every unsafe console request carries the session's CSRF token (form field or X-CSRFToken header)."""
    csrf.protect()
