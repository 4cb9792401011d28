"""Device broker credentials at /api/v1/devices/{id}/credentials: viewers see which exist, operators issue,
rotate and revoke them (docs/security.md). Secrets appear only in the response that created them."""

from __future__ import annotations

from dataclasses import asdict

from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.auth.roles import requires
from device_manager.extensions import services
from device_manager.schemas.credentials import (
    BulkCredentialRequestSchema,
    BulkIssuedSchema,
    CredentialRequestSchema,
    CredentialsViewSchema,
    IssuedSchema,
    RevokeArgs,
)
from device_manager.service.credentials import KINDS, CredentialService, Issued, Request
from device_manager.service.roles import Role

blp = Blueprint("credentials", __name__, url_prefix="/api/v1/devices", description="Device broker credentials")


def _service() -> CredentialService:
    return services().credentials


def _request(body) -> Request:
    csr = body.get("csr")
    return Request(password=body["password"], certificate=body["certificate"], csr_pem=csr.encode() if csr else None)


def _cred(c) -> dict:
    view = asdict(c)
    view["serial"] = str(c.serial) if c.serial is not None else None
    return view


def _issued(i: Issued) -> dict:
    cert = i.certificate
    return {"device_id": i.device_id, "username": i.device_id, "password": i.password,
            "certificate": cert.cert_pem.decode() if cert else None,
            "private_key": cert.key_pem.decode() if cert and cert.key_pem else None,
            "credentials": [_cred(c) for c in i.credentials]}


def with_credentials(rows: list[dict], wanted: list[dict | None]) -> list[dict]:
    """Devices just registered, each with the credentials asked for issued (one broker round trip per kind set)."""
    groups: dict[tuple[bool, bool], list[int]] = {}
    for i, w in enumerate(wanted):
        if w and (w["password"] or w["certificate"]):
            groups.setdefault((w["password"], w["certificate"]), []).append(i)
    out = list(rows)
    for (password, certificate), indices in groups.items():
        issued = _service().issue_many([rows[i]["id"] for i in indices], Request(password, certificate))
        for i, item in zip(indices, issued, strict=True):
            out[i] = {**rows[i], "credentials": _issued(item)}
    return out


@blp.route("/<uuid:device_id>/credentials")
class DeviceCredentials(MethodView):
    """A device's broker credentials."""

    @requires(Role.VIEWER)
    @blp.response(200, CredentialsViewSchema)
    def get(self, device_id):
        """Which credentials the device has, with fingerprints; never a secret."""
        mqtt_id, creds = _service().show(device_id)
        return {"device_id": mqtt_id, "credentials": [_cred(c) for c in creds.values()]}

    @requires(Role.OPERATOR)
    @blp.arguments(CredentialRequestSchema)
    @blp.response(201, IssuedSchema)
    def post(self, body, device_id):
        """Issue credentials the device does not have yet (409 when it has: rotate). Secrets are shown once."""
        return _issued(_service().issue(device_id, _request(body)))

    @requires(Role.OPERATOR)
    @blp.arguments(RevokeArgs, location="query")
    @blp.response(204)
    def delete(self, args, device_id):
        """Revoke (all, or `kind`): the device is disconnected now and its next connect refused."""
        _service().revoke(device_id, (args["kind"],) if args["kind"] else KINDS)


@blp.route("/<uuid:device_id>/credentials/rotate", methods=["POST"])
@requires(Role.OPERATOR)
@blp.arguments(CredentialRequestSchema)
@blp.response(201, IssuedSchema)
def rotate(body, device_id):
    """Replace credentials: the old password stops working, the old certificate is revoked, sessions end."""
    return _issued(_service().rotate(device_id, _request(body)))


@blp.route("/credentials/bulk", methods=["POST"])
@requires(Role.OPERATOR)
@blp.arguments(BulkCredentialRequestSchema)
@blp.response(201, BulkIssuedSchema)
def bulk_issue(body):
    """Issue the same kinds of credentials to up to BULK_MAX devices (replacing theirs), e.g. after a bulk create."""
    items = _service().issue_many(body["devices"], _request(body))
    return {"count": len(items), "items": [_issued(i) for i in items]}
