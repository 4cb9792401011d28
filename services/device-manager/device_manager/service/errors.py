"""Domain errors: what went wrong in business terms; each transport maps them to its own answer (no HTTP here)."""

from __future__ import annotations

from typing import Any

from iothub.errors import Unavailable

__all__ = ["Conflict", "DomainError", "Forbidden", "Invalid", "NotFound", "Unavailable"]


class DomainError(Exception):
    """A refused use case: a message, optional details (field errors or context) and an optional stable code."""

    code: str | None = None

    def __init__(self, message: str, details: Any = None, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details if details is not None else {}
        if code:
            self.code = code


class NotFound(DomainError):
    """No such resource."""


class Conflict(DomainError):
    """The request conflicts with the current state (duplicate, still referenced, wrong state)."""


class Invalid(DomainError):
    """Well-formed but semantically invalid input."""


class Forbidden(DomainError):
    """The actor may not do this."""
