"""Users (admin only): create, change role, enable or disable."""

from __future__ import annotations

from flask import Blueprint, render_template

from device_manager.console import data, forms
from device_manager.console.blueprint import requires
from device_manager.schemas.users import UserListArgs
from device_manager.service.roles import Role

bp = Blueprint("users", __name__)
ROLES = tuple(r.value for r in Role)


@bp.route("/users")
@requires(Role.ADMIN)
def index():
    """A page of users and the form to add one."""
    args = forms.query(UserListArgs)
    args.setdefault("page_size", 50)
    req = data.page_request(UserListArgs, args)
    page = data.users(req)
    return render_template("console/users.html", page=page, pg=forms.pages(page, req), roles=ROLES)


@bp.route("/users", methods=["POST"])
@requires(Role.ADMIN)
def create():
    """Add a user."""
    values = forms.fields("email", "password", "role")
    values["is_active"] = True
    created = data.create_user(values)
    return forms.done(f"User {created['email']} created", "console/_user_row.html", u=created, roles=ROLES)


@bp.route("/users/<uuid:user_id>", methods=["POST"])
@requires(Role.ADMIN)
def update(user_id):
    """Change a user's role and active flag."""
    changed = data.update_user(user_id, {**forms.fields("role"), "is_active": forms.checked("is_active")})
    return forms.done(f"User {changed['email']} saved", "console/_user_row.html", u=changed, roles=ROLES)
