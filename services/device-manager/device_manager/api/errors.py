"""The JSON API's one error boundary: domain errors, HTTP errors, integrity errors and outages all rendered as
{"error": {code, message, details}} with the status the domain error maps to."""

from __future__ import annotations

import logging
from typing import Any

import psycopg2.errors
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from device_manager.http_status import status_of
from device_manager.service import errors as domain
from device_manager.service.errors import Unavailable

log = logging.getLogger("device_manager.errors")

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_error",
    429: "rate_limited", 500: "internal_error", 503: "unavailable",
}


class Unauthorized(domain.DomainError):
    """Missing or unusable credentials (a transport concern: only the API's auth routes raise it)."""


_AUTH = {Unauthorized: (401, "unauthorized")}  # beside the shared table (http_status); an error's own code wins


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


def _domain(error: domain.DomainError):
    status, code = status_of(error, _AUTH)
    return error_response(status, error.code or code, error.message, error.details)


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
    app.register_error_handler(domain.DomainError, _domain)
    app.register_error_handler(psycopg2.IntegrityError, _integrity)
    app.register_error_handler(Unavailable, _unavailable)
    app.register_error_handler(Exception, _unexpected)
