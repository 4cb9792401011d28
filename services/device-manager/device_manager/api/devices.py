"""Devices at /api/v1/devices: everyone reads; operators create, change, delete and issue ingest tokens."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.credentials import with_credentials
from device_manager.api.pagination import page_response
from device_manager.auth.roles import requires
from device_manager.extensions import services
from device_manager.schemas.command_keys import ProvisionedBulkSchema, ProvisionedDeviceSchema
from device_manager.schemas.devices import (
    DeviceBulkSchema,
    DeviceCreateSchema,
    DeviceListArgs,
    DevicePageSchema,
    DeviceSchema,
    DeviceUpdateSchema,
    IngestTokenSchema,
)
from device_manager.service.pagination import PageRequest
from device_manager.service.roles import Role

blp = Blueprint("devices", __name__, url_prefix="/api/v1/devices", description="Devices")


@blp.route("")
class Devices(MethodView):
    """The device collection."""

    @requires(Role.VIEWER)
    @blp.arguments(DeviceListArgs, location="query")
    @blp.response(200, DevicePageSchema)
    def get(self, args):
        """List devices (filter device_type_id, device_type, status, connection_status, device_id, q).

        `total` is exact up to 10,000 matching devices; a larger total may be up to 2 seconds old.
        """
        req = PageRequest.from_args(args)
        return page_response(services().devices.list(req), req)

    @requires(Role.OPERATOR)
    @blp.arguments(DeviceCreateSchema)
    @blp.response(201, ProvisionedDeviceSchema)
    def post(self, body):
        """Register a device; the answer carries its command-signing key and, with `credentials`, its broker password
        and/or certificate: secrets shown only this once."""
        wanted = body.pop("credentials", None)
        return with_credentials([services().devices.create(body)], [wanted])[0]


@blp.route("/bulk", methods=["POST"])
@requires(Role.OPERATOR)
@blp.arguments(DeviceBulkSchema)
@blp.response(201, ProvisionedBulkSchema)
def bulk_create(body):
    """Register up to BULK_MAX devices at once, all or none (409 names the first duplicate); items with
    `credentials` get theirs issued; each carries its command-signing key (secrets in this response only)."""
    wanted = [d.pop("credentials", None) for d in body["devices"]]
    result = services().devices.create_many(body["devices"])
    return {**result, "items": with_credentials(result["items"], wanted)}


@blp.route("/<uuid:device_id>")
class DeviceItem(MethodView):
    """One device, addressed by its UUID."""

    @requires(Role.VIEWER)
    @blp.response(200, DeviceSchema)
    def get(self, device_id):
        """Read a device."""
        return services().devices.get(device_id)

    @requires(Role.OPERATOR)
    @blp.arguments(DeviceUpdateSchema)
    @blp.response(200, DeviceSchema)
    def patch(self, body, device_id):
        """Change a device (not its device_id)."""
        return services().devices.update(device_id, body)

    @requires(Role.OPERATOR)
    @blp.response(204)
    def delete(self, device_id):
        """Delete a device with its config, commands and OTA states; its broker credentials are revoked first."""
        services().credentials.forget(device_id)
        services().devices.delete(device_id)


@blp.route("/<uuid:device_id>/ingest-token", methods=["POST"])
@requires(Role.OPERATOR)
@blp.response(201, IngestTokenSchema)
def create_ingest_token(device_id):
    """Generate an HTTP ingest token (replacing any previous one); it is returned only this once."""
    return services().devices.issue_ingest_token(device_id)


@blp.route("/<uuid:device_id>/ingest-token", methods=["DELETE"])
@requires(Role.OPERATOR)
@blp.response(204)
def revoke_ingest_token(device_id):
    """Remove the device's HTTP ingest token."""
    services().devices.revoke_ingest_token(device_id)
