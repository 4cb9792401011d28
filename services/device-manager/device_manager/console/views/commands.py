"""Commands across the fleet and their lifecycle (pending -> sent -> accepted | rejected | error | expired)."""

from __future__ import annotations

from flask import Blueprint, render_template

from device_manager.console import data, forms
from device_manager.console.blueprint import requires
from device_manager.schemas.commands import CommandListArgs
from device_manager.service.roles import Role

bp = Blueprint("commands", __name__)


@bp.route("/commands")
@requires(Role.VIEWER)
def index():
    """A page of commands, newest first (polled)."""
    args = forms.query(CommandListArgs)
    args.setdefault("page_size", 25)
    req = data.page_request(CommandListArgs, args)
    page = data.commands(req)
    return forms.list_page("console/commands.html", "console/_commands_table.html", "commands-table",
                           page, req, args=args)


@bp.route("/commands/<uuid:cmd_id>")
@requires(Role.VIEWER)
def show(cmd_id):
    """One command's lifecycle."""
    return render_template("console/command.html", c=data.command(cmd_id))
