"""Device types at /api/v1/device-types: everyone reads, admins write."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import requires
from device_manager.extensions import services
from device_manager.schemas.device_types import (
    DeviceTypeCreateSchema,
    DeviceTypeListArgs,
    DeviceTypePageSchema,
    DeviceTypeSchema,
    DeviceTypeUpdateSchema,
)
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
        return page_response(services().device_types.list(req), req)

    @requires(Role.ADMIN)
    @blp.arguments(DeviceTypeCreateSchema)
    @blp.response(201, DeviceTypeSchema)
    def post(self, body):
        """Create a device type."""
        return services().device_types.create(body)


@blp.route("/<uuid:type_id>")
class DeviceTypeItem(MethodView):
    """One device type."""

    @requires(Role.VIEWER)
    @blp.response(200, DeviceTypeSchema)
    def get(self, type_id):
        """Read a device type."""
        return services().device_types.get(type_id)

    @requires(Role.ADMIN)
    @blp.arguments(DeviceTypeUpdateSchema)
    @blp.response(200, DeviceTypeSchema)
    def patch(self, body, type_id):
        """Change a device type."""
        return services().device_types.update(type_id, body)

    @requires(Role.ADMIN)
    @blp.response(204)
    def delete(self, type_id):
        """Delete a device type no device uses (409 otherwise)."""
        services().device_types.delete(type_id)
