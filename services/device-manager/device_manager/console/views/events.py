"""Events and alarms: filter, acknowledge, resolve."""

from __future__ import annotations

from flask import Blueprint, request

from device_manager.console import data, forms
from device_manager.console.blueprint import actor, requires
from device_manager.schemas.events import EventListArgs
from device_manager.service.roles import Role

bp = Blueprint("events", __name__)


@bp.route("/events")
@requires(Role.VIEWER)
def index():
    """A page of events; unresolved ones by default."""
    args = forms.query(EventListArgs)
    if "status" not in args and request.args.get("all") != "1":
        args["status"] = ["open", "acknowledged"]
    args.setdefault("page_size", 25)
    req = data.page_request(EventListArgs, args)
    page = data.events(req)
    return forms.list_page("console/events.html", "console/_events_table.html", "events-table", page, req, args=args)


@bp.route("/events/<uuid:event_id>/acknowledge", methods=["POST"])
@requires(Role.OPERATOR)
def acknowledge(event_id):
    """Acknowledge an open event."""
    event = data.event_transition(event_id, "acknowledged", actor())
    return forms.done("Event acknowledged", "console/_event_row.html", e=event)


@bp.route("/events/<uuid:event_id>/resolve", methods=["POST"])
@requires(Role.OPERATOR)
def resolve(event_id):
    """Resolve an open or acknowledged event with a comment."""
    event = data.event_transition(event_id, "resolved", actor(), request.form.get("comment", "").strip() or None)
    return forms.done("Event resolved", "console/_event_row.html", e=event)
