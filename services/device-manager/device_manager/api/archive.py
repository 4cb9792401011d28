"""Legacy per-device archive at /api/v1/devices/{id}/archive: list a device's windows and download one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import marshmallow as ma
from flask import Response, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.telemetry import device_text_id, query_error
from device_manager.archive.keys import CATEGORIES, InvalidKey
from device_manager.auth.roles import error_responses, requires
from device_manager.backends import get_archive
from device_manager.schemas.archive import ArchiveArgs, ArchiveListSchema
from device_manager.schemas.common import ErrorSchema
from device_manager.service.errors import NotFound
from device_manager.service.roles import Role
from device_manager.telemetry.query import QueryError

blp = Blueprint("archive", __name__, url_prefix="/api/v1/devices", description="Raw message archive")
MAX_RANGE = timedelta(days=31)
DEFAULT_RANGE = timedelta(days=1)


@blp.route("/<uuid:device_id>/archive")
class Archive(MethodView):
    """A device's archived objects."""

    @requires(Role.VIEWER)
    @blp.doc(responses=error_responses(r404="Device not found"))
    @blp.arguments(ArchiveArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, ArchiveListSchema)
    def get(self, args, device_id):
        """Objects whose window overlaps [start, end) (default the last 24 h, at most 31 days), oldest first."""
        text_id = device_text_id(device_id)
        try:
            start, end = time_range(args.get("start"), args.get("end"))
        except QueryError as exc:
            raise query_error(exc) from None
        categories = tuple(args.get("category") or CATEGORIES)
        found = get_archive().list(text_id, start, end, categories, limit=args["limit"])
        return {"device_id": text_id, "start": start, "end": end, "items": found[:args["limit"]],
                "truncated": len(found) > args["limit"]}


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
    text_id = device_text_id(device_id)
    try:
        opened = get_archive().open(text_id, key)
    except InvalidKey:
        opened = None
    if opened is None:
        raise NotFound("Archive object not found", {"key": key[:300]})

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


def time_range(start: datetime | None, end: datetime | None,
               names: tuple[str, str] = ("start", "end")) -> tuple[datetime, datetime]:
    """[start, end) with defaults (the last 24 h) and the 31-day bound; QueryError naming the query parameter."""
    end = end.astimezone(UTC) if end else datetime.now(UTC)
    start = start.astimezone(UTC) if start else end - DEFAULT_RANGE
    if start >= end:
        raise QueryError(names[0], f"must be before {names[1]}")
    if end - start > MAX_RANGE:
        raise QueryError(names[1], f"range is longer than the maximum of {MAX_RANGE.days} days")
    return start, end
