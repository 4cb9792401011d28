"""POST /auth/login, /auth/refresh, /auth/logout and GET /auth/me."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, request
from flask_jwt_extended import decode_token, get_jwt, get_jwt_identity, jwt_required
from flask_smorest import Blueprint

from device_manager.api.errors import Unauthorized
from device_manager.auth import tokens
from device_manager.auth.roles import error_responses
from device_manager.extensions import limiter, services
from device_manager.schemas.users import LoginSchema, LogoutSchema, TokensSchema, UserSchema

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Login, token refresh, logout")
_TOKEN_ERRORS = error_responses(r401="Missing, invalid, expired or revoked token")


def _login_key() -> str:
    """Rate-limit bucket: the email being tried plus the client address."""
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    return f"{str(email or '').lower()}|{request.remote_addr}"


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@blp.route("/login", methods=["POST"])
@limiter.limit(_login_limit, key_func=_login_key)
@blp.arguments(LoginSchema)
@blp.response(200, TokensSchema)
@blp.doc(security=[], responses=error_responses(r401="Wrong email or password, or the user is disabled",
                                                r429="Too many login attempts for this email from this address"))
def login(body):
    """Exchange email and password for an access and a refresh token."""
    user = services().users.authenticate(body["email"], body["password"])
    if user is None:
        raise Unauthorized("Invalid email or password", code="invalid_credentials")
    return tokens.issue(user)


@blp.route("/refresh", methods=["POST"])
@jwt_required(refresh=True)
@blp.response(200, TokensSchema)
@blp.doc(responses=_TOKEN_ERRORS)
def refresh():
    """A new access token from a refresh token (sent as the Bearer token); role is re-read from the database."""
    user = services().users.active(get_jwt_identity())
    if user is None:
        raise Unauthorized("User no longer exists or is disabled", code="invalid_token")
    if tokens.password_version(get_jwt()) != user["password_version"]:  # changed since the blocklist check
        raise Unauthorized("Token has been revoked", code="token_revoked")
    return tokens.issue(user, refresh=False, fresh=False)


@blp.route("/logout", methods=["POST"])
@jwt_required(verify_type=False)
@blp.arguments(LogoutSchema, required=False)
@blp.response(204)
@blp.doc(responses=_TOKEN_ERRORS)
def logout(body):
    """Revoke the presented token and, if given, the refresh token in the body."""
    users = services().users
    claims = get_jwt()
    users.revoke_token(claims["jti"], datetime.fromtimestamp(claims["exp"], UTC))
    if body and body.get("refresh_token"):
        try:
            other = decode_token(body["refresh_token"], allow_expired=True)
        except Exception as exc:  # any decoding failure means the body token is not ours
            raise Unauthorized("refresh_token is not a valid token", code="invalid_token") from exc
        if other.get("sub") != claims.get("sub"):
            raise Unauthorized("refresh_token belongs to another user", code="invalid_token")
        users.revoke_token(other["jti"], datetime.fromtimestamp(other["exp"], UTC))


@blp.route("/me", methods=["GET"])
@jwt_required()
@blp.response(200, UserSchema)
@blp.doc(responses=_TOKEN_ERRORS)
def me():
    """The authenticated user."""
    user = services().users.find(get_jwt_identity())
    if not user:
        raise Unauthorized("User no longer exists", code="invalid_token")
    return user
