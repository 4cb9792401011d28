"""Typed API errors and the one handler that renders every 4xx/5xx as {"error": {code, message, details}}."""

from __future__ import annotations

import logging
from typing import Any

import psycopg2.errors
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from iothub.errors import Unavailable

log = logging.getLogger("device_manager.errors")

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_error",
    429: "rate_limited", 500: "internal_error", 503: "unavailable",
}


class ApiError(Exception):
    """An error with an HTTP status, a stable code and optional details."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: Any = None, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details if details is not None else {}
        if code:
            self.code = code


class BadRequest(ApiError):
    """The request cannot be understood."""


class Unauthorized(ApiError):
    """Missing or unusable credentials."""

    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    """Authenticated but not allowed."""

    status, code = 403, "forbidden"


class NotFound(ApiError):
    """No such resource."""

    status, code = 404, "not_found"


class Conflict(ApiError):
    """The request conflicts with the current state (duplicate, still referenced, wrong state)."""

    status, code = 409, "conflict"


class Invalid(ApiError):
    """Well-formed but semantically invalid input (422)."""

    status, code = 422, "validation_error"


def error_response(status: int, code: str, message: str, details: Any = None, headers: dict | None = None):
    """The standard error body as a Flask response tuple."""
    body = jsonify({"error": {"code": code, "message": message, "details": details if details is not None else {}}})
    return body, status, headers or {}


def _http(error: HTTPException):
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    details = data.get("messages") or data.get("errors") or {}
    message = data.get("message") or error.description or error.name
    if status == 422 and details:
        message = "Request validation failed"
    elif status == 400 and details:  # webargs: malformed JSON
        message = "Malformed JSON body"
    headers = dict(data.get("headers") or {})
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(valid_methods)
    if status == 429:
        message = f"Too many requests: {error.description}"
    return error_response(status, _HTTP_CODES.get(status, error.name.lower().replace(" ", "_")), message, details,
                          headers)


def _api(error: ApiError):
    return error_response(error.status, error.code, error.message, error.details)


def _integrity(error: psycopg2.IntegrityError):
    diag = error.diag
    details = {"constraint": diag.constraint_name, "detail": diag.message_detail}
    if isinstance(error, psycopg2.errors.UniqueViolation):
        return error_response(409, "conflict", "A resource with these unique values already exists", details)
    if isinstance(error, psycopg2.errors.ForeignKeyViolation):
        if (diag.message_primary or "").startswith("insert or update"):
            return error_response(422, "validation_error", "A referenced resource does not exist", details)
        return error_response(409, "conflict", "The resource is still referenced by others", details)
    return error_response(422, "validation_error", "The values violate a constraint", details)


def _unavailable(error: Unavailable):
    log.warning("dependency unavailable", extra={"error": str(error)})
    return error_response(503, "unavailable", "A dependency is unavailable, retry later")


def _unexpected(error: Exception):
    log.exception("unhandled error", exc_info=error)
    return error_response(500, "internal_error", "Internal server error")


def register(app: Flask) -> None:
    """Install the handlers; Flask picks the most specific class, so these cover everything."""
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(ApiError, _api)
    app.register_error_handler(psycopg2.IntegrityError, _integrity)
    app.register_error_handler(Unavailable, _unavailable)
    app.register_error_handler(Exception, _unexpected)
