"""`requires(Role.X)`: a valid access token whose role is at least X, else 401/403 in the standard format."""

from __future__ import annotations

from functools import wraps

from flask_jwt_extended import get_jwt, get_jwt_identity, verify_jwt_in_request

from device_manager.service.errors import Forbidden
from device_manager.service.roles import Role, allows


def requires(minimum: Role):
    """Decorate a view so that only users with at least `minimum` role reach it."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            verify_jwt_in_request()
            role = get_jwt().get("role")
            if not allows(role, minimum):
                raise Forbidden(f"This action needs the {minimum.value} role", {"role": role,
                                                                                "required": minimum.value})
            return view(*args, **kwargs)

        _document(wrapper, minimum)
        return wrapper

    return decorator


def current_user_id() -> str:
    """The id (UUID string) of the authenticated user."""
    return get_jwt_identity()


def current_actor() -> str:
    """Who did it, for created_by / updated_by columns: the user's email."""
    return get_jwt().get("email") or get_jwt_identity()


def error_responses(**descriptions: str) -> dict:
    """OpenAPI responses in the standard error format, e.g. error_responses(r401="...") for blp.doc(responses=)."""
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {code.lstrip("r"): {"description": text, **error} for code, text in descriptions.items()}


def _document(view, minimum: Role) -> None:
    """Add the 401/403 responses and the required role to the operation's OpenAPI entry."""
    doc = {"responses": error_responses(r401="Missing, invalid, expired or revoked token",
                                        r403=f"Needs the {minimum.value} role or higher"),
           "x-required-role": minimum.value}
    apidoc = getattr(view, "_apidoc", None)
    if apidoc is None:
        apidoc = view._apidoc = {}
    manual = apidoc.setdefault("manual_doc", {})
    manual.setdefault("responses", {}).update(doc["responses"])
    manual["x-required-role"] = doc["x-required-role"]
