"""Dashboard figures at /api/v1/stats: devices by status, open events by severity, ingest and reject rates."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.auth.roles import requires
from device_manager.extensions import services
from device_manager.schemas.stats import StatsArgs, StatsSchema
from device_manager.service.roles import Role

blp = Blueprint("stats", __name__, url_prefix="/api/v1/stats", description="Fleet and pipeline figures")


@blp.route("")
class Stats(MethodView):
    """The figures."""

    @requires(Role.VIEWER)
    @blp.arguments(StatsArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, StatsSchema)
    def get(self, args):
        """Devices by status and connection status, unresolved events by severity, notifications and dead letters
        by status, and stored datagrams / dead-lettered messages per second over the last window_s seconds."""
        return services().stats.summary(args["window_s"])
