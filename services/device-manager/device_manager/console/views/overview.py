"""The fleet overview: devices by connection, open alarms by severity, ingest rate, parked dead letters."""

from __future__ import annotations

from flask import Blueprint, render_template

from device_manager.console import data
from device_manager.console.blueprint import requires
from device_manager.console.cache import cached
from device_manager.service.roles import Role

bp = Blueprint("overview", __name__)
SUMMARY_TTL_S = 5.0  # the cards poll every 5 s; fleet-wide counts are read at most that often per process


@bp.route("/")
@requires(Role.VIEWER)
def index():
    """The overview page."""
    return render_template("console/overview.html", s=_summary())


@bp.route("/overview/cards")
@requires(Role.VIEWER)
def cards():
    """The figures alone (polled)."""
    return render_template("console/_overview_cards.html", s=_summary())


def _summary() -> dict:
    return cached("fleet_summary", SUMMARY_TTL_S, data.fleet_summary)
