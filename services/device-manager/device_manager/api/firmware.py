"""Firmware images at /api/v1/firmware: operators upload (raw body or multipart), everyone lists and reads."""

from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import current_actor, requires
from device_manager.extensions import get_settings, services
from device_manager.schemas.firmware import (
    FW_VERSION,
    FirmwareListArgs,
    FirmwarePageSchema,
    FirmwareSchema,
    FirmwareUploadArgs,
)
from device_manager.service.errors import Invalid
from device_manager.service.firmware import FirmwareService
from device_manager.service.pagination import PageRequest
from device_manager.service.roles import Role

blp = Blueprint("firmware", __name__, url_prefix="/api/v1/firmware", description="Firmware images")
UPLOAD_DOC = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}, "fw_version": {"type": "string"}}}}}}}
MULTIPART_OVERHEAD = 64 * 1024


def firmware() -> FirmwareService:
    """The app's firmware service."""
    return services().firmware


@blp.route("")
class Firmware(MethodView):
    """The image collection."""

    @requires(Role.VIEWER)
    @blp.arguments(FirmwareListArgs, location="query")
    @blp.response(200, FirmwarePageSchema)
    def get(self, args):
        """List uploaded images (filter fw_version)."""
        req = PageRequest.from_args(args)
        return page_response(firmware().list(req), req)

    @requires(Role.OPERATOR)
    @blp.arguments(FirmwareUploadArgs, location="query")
    @blp.doc(**UPLOAD_DOC)
    @blp.response(201, FirmwareSchema)
    def post(self, args):
        """Upload an image as the raw body (?fw_version=) or multipart `file` (+ `fw_version`); the server
        computes its SHA-256 and size, which every rollout of it sends to the devices."""
        request.max_content_length = get_settings().firmware_max_bytes + MULTIPART_OVERHEAD
        if request.mimetype == "multipart/form-data":
            upload = request.files.get("file")
            if upload is None:
                raise Invalid("Multipart uploads need a file part", {"file": ["Missing."]})
            version, name, data = request.form.get("fw_version", args.get("fw_version")), upload.filename, upload.stream
        else:
            version, name, data = args.get("fw_version"), args.get("filename"), request.stream
        if not version or FW_VERSION.regex.match(version) is None:
            raise Invalid("fw_version is required (semver)", {"fw_version": ["Must be semver."]})
        return firmware().upload(version, name or args.get("filename"), data, current_actor())


@blp.route("/<uuid:firmware_id>")
@requires(Role.VIEWER)
@blp.response(200, FirmwareSchema)
def read(firmware_id):
    """One image."""
    return firmware().get(firmware_id)
