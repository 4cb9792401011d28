"""Legacy per-device archive at /api/v1/devices/{id}/archive: list a device's windows and download one."""

from __future__ import annotations

import marshmallow as ma
from flask import Response, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.auth.roles import error_responses, requires
from device_manager.extensions import services
from device_manager.schemas.archive import ArchiveArgs, ArchiveListSchema
from device_manager.schemas.common import ErrorSchema
from device_manager.service.roles import Role

blp = Blueprint("archive", __name__, url_prefix="/api/v1/devices", description="Raw message archive")


@blp.route("/<uuid:device_id>/archive")
class Archive(MethodView):
    """A device's archived objects."""

    @requires(Role.VIEWER)
    @blp.doc(responses=error_responses(r404="Device not found"))
    @blp.arguments(ArchiveArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, ArchiveListSchema)
    def get(self, args, device_id):
        """Objects whose window overlaps [start, end) (default the last 24 h, at most 31 days), oldest first."""
        return services().readings.archive_objects(device_id, args.get("start"), args.get("end"),
                                                   tuple(args.get("category") or ()), args["limit"])


@blp.route("/<uuid:device_id>/archive/<path:key>")
@requires(Role.VIEWER)
@blp.response(200, description="The object as stored: NDJSON, or gzip when the key ends in .gz")
@blp.alt_response(404, schema=ErrorSchema, description="No such object, or a key outside this device's archive")
@blp.doc(responses={"200": {
    "description": "The object as stored: NDJSON, or gzip when the key ends in .gz",
    "content": {media: {"schema": {"type": "string", "format": "binary"}}
                for media in ("application/x-ndjson", "application/gzip")}}})
def download(device_id, key):
    """Download one archived object; only keys of this device's layout
    ({device_id}/{category}/YYYY/MM/DD/HHMMSS.ndjson[.gz]) are served."""
    text_id, opened = services().readings.open_object(device_id, key)

    def chunks():
        try:
            yield from opened.chunks
        finally:
            opened.close()

    filename = key.rsplit("/", 1)[-1]
    headers = {"Content-Disposition": f'attachment; filename="{text_id}-{opened.obj.category}-{filename}"'}
    if opened.obj.size:
        headers["Content-Length"] = str(opened.obj.size)
    return Response(stream_with_context(chunks()), status=200, mimetype=opened.obj.content_type, headers=headers)
