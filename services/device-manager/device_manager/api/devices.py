"""Devices at /api/v1/devices: everyone reads; operators create, change, delete and issue ingest tokens."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import requires
from device_manager.extensions import get_counts, get_db, get_settings
from device_manager.repositories.devices import DeviceRepository
from device_manager.schemas.devices import (
    DeviceBulkResultSchema,
    DeviceBulkSchema,
    DeviceCreateSchema,
    DeviceListArgs,
    DevicePageSchema,
    DeviceSchema,
    DeviceUpdateSchema,
    IngestTokenSchema,
)
from device_manager.service.errors import Invalid, NotFound
from device_manager.service.ingest import new_ingest_token
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
        return page_response(DeviceRepository(get_db(), get_counts()).list(req), req)

    @requires(Role.OPERATOR)
    @blp.arguments(DeviceCreateSchema)
    @blp.response(201, DeviceSchema)
    def post(self, body):
        """Register a device."""
        return DeviceRepository(get_db()).create_many([body])[0]


@blp.route("/bulk", methods=["POST"])
@requires(Role.OPERATOR)
@blp.arguments(DeviceBulkSchema)
@blp.response(201, DeviceBulkResultSchema)
def bulk_create(body):
    """Register up to BULK_MAX devices at once, all or none (409 names the first duplicate)."""
    limit = get_settings().bulk_max
    if len(body["devices"]) > limit:
        raise Invalid(f"At most {limit} devices per request", {"json": {"devices": [f"Longer than {limit}."]}})
    items = DeviceRepository(get_db()).create_many(body["devices"])
    return {"count": len(items), "items": items}


@blp.route("/<uuid:device_id>")
class DeviceItem(MethodView):
    """One device, addressed by its UUID."""

    @requires(Role.VIEWER)
    @blp.response(200, DeviceSchema)
    def get(self, device_id):
        """Read a device."""
        return _found(DeviceRepository(get_db()).get(device_id))

    @requires(Role.OPERATOR)
    @blp.arguments(DeviceUpdateSchema)
    @blp.response(200, DeviceSchema)
    def patch(self, body, device_id):
        """Change a device (not its device_id)."""
        return _found(DeviceRepository(get_db()).update(device_id, body))

    @requires(Role.OPERATOR)
    @blp.response(204)
    def delete(self, device_id):
        """Delete a device with its config, commands and OTA states."""
        if not DeviceRepository(get_db()).delete(device_id):
            raise NotFound("Device not found")


@blp.route("/<uuid:device_id>/ingest-token", methods=["POST"])
@requires(Role.OPERATOR)
@blp.response(201, IngestTokenSchema)
def create_ingest_token(device_id):
    """Generate an HTTP ingest token (replacing any previous one); it is returned only this once."""
    token, digest = new_ingest_token()
    mqtt_id = DeviceRepository(get_db()).set_ingest_token_hash(device_id, digest)
    if mqtt_id is None:
        raise NotFound("Device not found")
    return {"device_id": mqtt_id, "token": token}


@blp.route("/<uuid:device_id>/ingest-token", methods=["DELETE"])
@requires(Role.OPERATOR)
@blp.response(204)
def revoke_ingest_token(device_id):
    """Remove the device's HTTP ingest token."""
    if DeviceRepository(get_db()).set_ingest_token_hash(device_id, None) is None:
        raise NotFound("Device not found")


def _found(row):
    if row is None:
        raise NotFound("Device not found")
    return row
