"""JWT setup: claims, blocklist check and every flask-jwt-extended error in the standard format."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from flask_jwt_extended import JWTManager, create_access_token, create_refresh_token

from device_manager.api.errors import error_response
from device_manager.extensions import services


def issue(user: dict[str, Any], *, refresh: bool = True, fresh: bool = True,
          access_lifetime: timedelta | None = None) -> dict[str, Any]:
    """Access (and refresh) tokens carrying the user's role and email."""
    claims = {"role": user["role"], "email": user["email"], "pwv": user["password_version"]}
    identity = str(user["id"])
    body: dict[str, Any] = {
        "access_token": create_access_token(identity, additional_claims=claims, fresh=fresh,
                                            expires_delta=access_lifetime),
        "token_type": "Bearer",
    }
    lifetime = access_lifetime or current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    body["expires_in"] = int(lifetime.total_seconds())
    if refresh:
        body["refresh_token"] = create_refresh_token(identity, additional_claims=claims)
    return body


def password_version(payload: dict[str, Any]) -> int:
    """The token's password version (tokens from before the claim existed: 0; a forged non-integer: never current)."""
    claim = payload.get("pwv", 0)
    return claim if isinstance(claim, int) and not isinstance(claim, bool) else -1


def _unauthorized(message: str, code: str = "unauthorized"):
    return error_response(401, code, message, {}, {"WWW-Authenticate": "Bearer"})


def register(jwt: JWTManager) -> None:
    """Install the callbacks; a token counts as revoked when logged out or when its user was disabled, deleted
    or given another role, so those take effect at once instead of at token expiry."""

    @jwt.token_in_blocklist_loader
    def _revoked(_header, payload):
        return not services().users.token_usable(payload["jti"], str(payload.get("sub")), payload.get("role"),
                                                 password_version(payload))

    @jwt.unauthorized_loader
    def _missing(reason):
        return _unauthorized(f"Missing or malformed credentials: {reason}")

    @jwt.invalid_token_loader
    def _invalid(reason):
        return _unauthorized(f"Invalid token: {reason}", "invalid_token")

    @jwt.expired_token_loader
    def _expired(_header, _payload):
        return _unauthorized("Token has expired", "token_expired")

    @jwt.revoked_token_loader
    def _revoked_response(_header, _payload):
        return _unauthorized("Token has been revoked (logged out, or the user was disabled, deleted or changed role "
                             "or password)", "token_revoked")

    @jwt.needs_fresh_token_loader
    def _needs_fresh(_header, _payload):
        return _unauthorized("A fresh token is required", "fresh_token_required")

    @jwt.token_verification_failed_loader
    def _failed(_header, _payload):
        return error_response(400, "bad_request", "Token claims verification failed")

    @jwt.user_lookup_error_loader
    def _no_user(_header, _payload):
        return _unauthorized("User not found", "invalid_token")
