"""Device types at /api/v1/device-types: everyone reads, admins write."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import requires
from device_manager.extensions import get_db
from device_manager.repositories.device_types import DeviceTypeRepository
from device_manager.schemas.device_types import (
    DeviceTypeCreateSchema,
    DeviceTypeListArgs,
    DeviceTypePageSchema,
    DeviceTypeSchema,
    DeviceTypeUpdateSchema,
)
from device_manager.service.errors import NotFound
from device_manager.service.pagination import PageRequest
from device_manager.service.roles import Role

blp = Blueprint("device_types", __name__, url_prefix="/api/v1/device-types", description="Device types")


@blp.route("")
class DeviceTypes(MethodView):
    """The device type collection."""

    @requires(Role.VIEWER)
    @blp.arguments(DeviceTypeListArgs, location="query")
    @blp.response(200, DeviceTypePageSchema)
    def get(self, args):
        """List device types (filter name, q; sort name, created_at, updated_at)."""
        req = PageRequest.from_args(args)
        return page_response(DeviceTypeRepository(get_db()).list(req), req)

    @requires(Role.ADMIN)
    @blp.arguments(DeviceTypeCreateSchema)
    @blp.response(201, DeviceTypeSchema)
    def post(self, body):
        """Create a device type."""
        return DeviceTypeRepository(get_db()).create(body)


@blp.route("/<uuid:type_id>")
class DeviceTypeItem(MethodView):
    """One device type."""

    @requires(Role.VIEWER)
    @blp.response(200, DeviceTypeSchema)
    def get(self, type_id):
        """Read a device type."""
        return _found(DeviceTypeRepository(get_db()).get(type_id))

    @requires(Role.ADMIN)
    @blp.arguments(DeviceTypeUpdateSchema)
    @blp.response(200, DeviceTypeSchema)
    def patch(self, body, type_id):
        """Change a device type."""
        return _found(DeviceTypeRepository(get_db()).update(type_id, body))

    @requires(Role.ADMIN)
    @blp.response(204)
    def delete(self, type_id):
        """Delete a device type no device uses (409 otherwise)."""
        if not DeviceTypeRepository(get_db()).delete(type_id):
            raise NotFound("Device type not found")


def _found(row):
    if row is None:
        raise NotFound("Device type not found")
    return row
