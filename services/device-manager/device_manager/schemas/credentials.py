"""Device broker credential schemas: requests, the secrets shown once, and the secret-free view."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from device_manager.schemas.common import Timestamp

KINDS = ("password", "certificate")


class CredentialKindsSchema(ma.Schema):
    """Credentials to issue along with a new device (POST /devices and each item of /devices/bulk)."""

    password = fields.Boolean(load_default=False)
    certificate = fields.Boolean(load_default=False)


class CredentialRequestSchema(ma.Schema):
    """Which credentials to issue or rotate: a password, a certificate (the CA makes the key) or a CSR's key."""

    password = fields.Boolean(load_default=False)
    certificate = fields.Boolean(load_default=False)
    csr = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=16384),
                        metadata={"description": "PEM certificate signing request; its key is certified with "
                                                 "CN = device_id (the CSR's own subject is ignored)"})

    @ma.validates_schema
    def _something(self, data, **_kw):
        if not (data["password"] or data["certificate"] or data.get("csr")):
            raise ma.ValidationError("Ask for a password, a certificate or a csr.", "_schema")


class BulkCredentialRequestSchema(CredentialRequestSchema):
    """POST /devices/credentials/bulk: the same credentials for many devices (replacing theirs)."""

    class Meta:
        exclude = ("csr",)  # one CSR is one device's key

    devices = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1))


class CredentialSchema(ma.Schema):
    """One credential as stored: no secret."""

    kind = fields.String(validate=validate.OneOf(KINDS))
    fingerprint = fields.String()
    serial = fields.String(allow_none=True, metadata={"description": "certificate serial number (decimal)"})
    not_after = Timestamp(allow_none=True)
    created_at = Timestamp(allow_none=True)


class CredentialsViewSchema(ma.Schema):
    """GET /devices/{id}/credentials: which credentials exist."""

    device_id = fields.String()
    credentials = fields.List(fields.Nested(CredentialSchema))


class IssuedSchema(ma.Schema):
    """Secrets of one device, returned only this once: username = device_id."""

    device_id = fields.String(required=True)
    username = fields.String(required=True)
    password = fields.String(allow_none=True)
    certificate = fields.String(allow_none=True, metadata={"description": "PEM client certificate, CN = device_id"})
    private_key = fields.String(allow_none=True, metadata={"description": "PEM key (absent when a CSR was sent)"})
    credentials = fields.List(fields.Nested(CredentialSchema))


class BulkIssuedSchema(ma.Schema):
    """Result of a bulk issue."""

    count = fields.Integer(required=True)
    items = fields.List(fields.Nested(IssuedSchema), required=True)


class RevokeArgs(ma.Schema):
    """DELETE /devices/{id}/credentials?kind=...: revoke one kind, or every credential without it."""

    kind = fields.String(load_default=None, validate=validate.OneOf(KINDS))
