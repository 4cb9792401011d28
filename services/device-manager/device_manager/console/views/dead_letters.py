"""Dead letters (admin only, as in the API): inspect, replay to the original exchange, or discard."""

from __future__ import annotations

from flask import Blueprint

from device_manager.console import data, forms
from device_manager.console.blueprint import actor, requires
from device_manager.schemas.dead_letters import DeadLetterListArgs
from device_manager.service.roles import Role

bp = Blueprint("dead_letters", __name__)


@bp.route("/dead-letters")
@requires(Role.ADMIN)
def index():
    """A page of dead letters, parked ones by default."""
    args = forms.query(DeadLetterListArgs)
    args.setdefault("status", "parked")
    args.setdefault("page_size", 25)
    req = data.page_request(DeadLetterListArgs, args)
    page = data.dead_letters(req)
    return forms.list_page("console/dead_letters.html", "console/_dead_letters_table.html", "dead-letters-table",
                           page, req, args=args)


@bp.route("/dead-letters/<uuid:dl_id>/<any(replay, discard):action>", methods=["POST"])
@requires(Role.ADMIN)
def handle(dl_id, action):
    """Replay or discard one parked dead letter."""
    row = data.handle_dead_letter(dl_id, action, actor())
    return forms.done(f"Dead letter {row['status']}", "console/_dead_letter_row.html", dl=row)
