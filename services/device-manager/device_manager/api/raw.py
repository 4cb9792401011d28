"""A device's raw archived messages at /api/v1/devices/{id}/raw, as NDJSON in time order, a bounded page each."""

from __future__ import annotations

from urllib.parse import urlencode

import marshmallow as ma
from flask import Response, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.archive.raw import ndjson
from device_manager.auth.roles import error_responses, requires
from device_manager.extensions import services
from device_manager.schemas.raw import RawArgs
from device_manager.service.roles import Role

blp = Blueprint("raw", __name__, url_prefix="/api/v1/devices", description="Raw archived messages")
OK = {"description": "NDJSON, one archived IngestMessage per line, ordered by (device ts, seq); "
                     "`Link: <...>; rel=\"next\"` when more messages are in range",
      "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}


@blp.route("/<uuid:device_id>/raw")
class Raw(MethodView):
    """A device's raw messages from the shared archive objects."""

    @requires(Role.VIEWER)
    @blp.doc(responses={"200": OK, **error_responses(r404="Device not found", r422="Invalid query",
                                                     r503="Archive index or object store unavailable")})
    @blp.arguments(RawArgs, location="query", unknown=ma.RAISE)
    def get(self, args, device_id):
        """Messages with device time in [from, to) (default the last 24 h, at most 31 days), at most `limit`
        (1,000) per response; follow the `Link` header for the rest. Messages archived in the legacy per-device
        layout are listed by /archive until backfilled (docs/archive.md)."""
        page = services().readings.raw(device_id, args.get("start"), args.get("end"), args.get("after"),
                                       args["limit"])
        headers = {"X-Archive-Missing": str(page.missing)}
        if page.after is not None:
            query = [(k, v) for k, v in request.args.items(multi=True) if k != "after"]
            headers["Link"] = f'<{request.path}?{urlencode([*query, ("after", page.after.encode())])}>; rel="next"'
        return Response(stream_with_context(ndjson(page)), status=200, mimetype="application/x-ndjson",
                        headers=headers)
