"""Users and authentication schemas."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.common import Timestamp, list_args, page_schema
from device_manager.service.roles import ROLES

_EMAIL = fields.Email(required=True, validate=validate.Length(max=254))
_PASSWORD = fields.String(required=True, load_only=True, validate=validate.Length(min=8, max=256))


class UserSchema(ma.Schema):
    """A user as returned by the API (never the password hash)."""

    id = fields.UUID(dump_only=True)
    email = fields.Email(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    is_active = fields.Boolean()
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)


class UserCreateSchema(ma.Schema):
    """POST /users."""

    email = _EMAIL
    password = _PASSWORD
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    is_active = fields.Boolean(load_default=True)


class UserUpdateSchema(ma.Schema):
    """PATCH /users/{id}: any subset."""

    email = fields.Email(validate=validate.Length(max=254))
    password = fields.String(load_only=True, validate=validate.Length(min=8, max=256))
    role = fields.String(validate=validate.OneOf(ROLES))
    is_active = fields.Boolean()


UserPageSchema = page_schema(UserSchema)
UserListArgs = list_args("UserListArgs", ("email", "role", "created_at", "updated_at"), "email",
                         role=fields.String(validate=validate.OneOf(ROLES)), is_active=fields.Boolean(),
                         q=fields.String(validate=validate.Length(min=1, max=254),
                                         metadata={"description": "Substring of the email"}))


class LoginSchema(ma.Schema):
    """POST /auth/login."""

    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))


class TokensSchema(ma.Schema):
    """Tokens issued by login (both) or refresh (access only)."""

    access_token = fields.String(required=True)
    refresh_token = fields.String()
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "Access token lifetime in seconds"})


class LogoutSchema(ma.Schema):
    """POST /auth/logout: optionally the refresh token to revoke along with the presented token."""

    refresh_token = fields.String(validate=validate.Length(min=1, max=4096))
