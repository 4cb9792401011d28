"""One device: identity, connection, firmware, desired vs reported config, live values, commands and charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, jsonify, render_template, request

from device_manager.console import data, forms
from device_manager.console.blueprint import actor, requires
from device_manager.service.errors import Invalid
from device_manager.service.roles import Role
from iothub.contract.commands import COMMANDS

bp = Blueprint("device", __name__)
# Chart ranges and their buckets: whole minutes (from 1 hour up) are answered by the 1-minute rollup.
RANGES = {"15m": (timedelta(minutes=15), timedelta(seconds=10)), "1h": (timedelta(hours=1), timedelta(minutes=1)),
          "6h": (timedelta(hours=6), timedelta(minutes=1)), "1d": (timedelta(days=1), timedelta(minutes=1)),
          "7d": (timedelta(days=7), timedelta(minutes=10)), "30d": (timedelta(days=30), timedelta(hours=1))}
AGGS = ("mean", "min", "max", "last", "count")


@bp.route("/devices/<uuid:device_id>")
@requires(Role.VIEWER)
def show(device_id):
    """The device page."""
    device = data.device(device_id)
    values = data.latest(device_id)
    return render_template("console/device.html", d=device, config=data.device_config(device_id), values=values,
                           commands=COMMANDS, ranges=RANGES, aggs=AGGS, cmds=_commands(device_id))


@bp.route("/devices/<uuid:device_id>/live")
@requires(Role.VIEWER)
def live(device_id):
    """Status and newest values (polled every 2 s)."""
    device = data.device(device_id)
    return render_template("console/_device_live.html", d=device, values=data.latest(device_id))


@bp.route("/devices/<uuid:device_id>/commands")
@requires(Role.VIEWER)
def commands(device_id):
    """The device's latest commands and their lifecycle (polled)."""
    return render_template("console/_device_commands.html", cmds=_commands(device_id))


@bp.route("/devices/<uuid:device_id>/commands", methods=["POST"])
@requires(Role.OPERATOR)
def send(device_id):
    """Send a command to the device."""
    sent = data.send_command(device_id, {"cmd": request.form.get("cmd", ""), "params": forms.json_object("params")},
                             actor())
    return forms.done(f"{sent['cmd']} is {sent['status']}", "console/_device_commands.html",
                      cmds=_commands(device_id))


@bp.route("/devices/<uuid:device_id>/series.json")
@requires(Role.VIEWER)
def series(device_id):
    """One metric as uPlot columns [[ts...], [value...]] over the chosen range and aggregation."""
    span, every = RANGES.get(request.args.get("range", "1h"), RANGES["1h"])
    agg = request.args.get("agg", "mean")
    metric = request.args.get("metric", "")
    if agg not in AGGS or not metric:
        raise Invalid("Choose a metric and an aggregation")
    now = datetime.now(UTC)
    end = (now.replace(second=0, microsecond=0) + timedelta(minutes=1)) if every % timedelta(minutes=1) == \
        timedelta(0) else now.replace(microsecond=0) + timedelta(seconds=1)
    found = data.series(device_id, metric, end - span, end, every, agg)
    points = found["points"] if found else []
    return jsonify({"metric": metric, "unit": found["unit"] if found else None, "every_s": every.total_seconds(),
                    "agg": agg, "start": (end - span).isoformat(), "end": end.isoformat(),
                    "data": [[p["ts"].timestamp() for p in points], [p["value"] for p in points]]})


def _commands(device_id):
    return data.device_commands(device_id, 10)
