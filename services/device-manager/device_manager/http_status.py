"""Domain error -> HTTP status and default code, shared by both transports (the JSON API and the console)."""

from __future__ import annotations

from device_manager.service import errors as domain

STATUS = {domain.NotFound: (404, "not_found"), domain.Conflict: (409, "conflict"),
          domain.Invalid: (422, "validation_error"), domain.Forbidden: (403, "forbidden")}


def status_of(error: domain.DomainError, extra: dict | None = None) -> tuple[int, str]:
    """The (status, code) of a domain error; `extra` adds a transport's own errors; 400 for anything else."""
    table = {**(extra or {}), **STATUS}
    return next((v for cls, v in table.items() if isinstance(error, cls)), (400, "bad_request"))
