"""Users CRUD (admin only) at /api/v1/users."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth import passwords
from device_manager.auth.roles import current_user_id, requires
from device_manager.extensions import get_db
from device_manager.repositories.users import UserRepository
from device_manager.schemas.users import UserCreateSchema, UserListArgs, UserPageSchema, UserSchema, UserUpdateSchema
from device_manager.service.errors import Conflict, NotFound
from device_manager.service.pagination import PageRequest
from device_manager.service.roles import Role

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="Users (admin only)")


@blp.route("")
class Users(MethodView):
    """The user collection."""

    @requires(Role.ADMIN)
    @blp.arguments(UserListArgs, location="query")
    @blp.response(200, UserPageSchema)
    def get(self, args):
        """List users (filter role, is_active, q; sort email, role, created_at, updated_at)."""
        req = PageRequest.from_args(args)
        return page_response(UserRepository(get_db()).list(req), req)

    @requires(Role.ADMIN)
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    def post(self, body):
        """Create a user."""
        return UserRepository(get_db()).create(body["email"], passwords.hash_password(body["password"]),
                                               body["role"], body["is_active"])


@blp.route("/<uuid:user_id>")
class UserItem(MethodView):
    """One user."""

    @requires(Role.ADMIN)
    @blp.response(200, UserSchema)
    def get(self, user_id):
        """Read a user."""
        return _found(UserRepository(get_db()).get(user_id))

    @requires(Role.ADMIN)
    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema)
    def patch(self, body, user_id):
        """Change email, password, role or active flag; the last active admin cannot lose admin rights."""
        repo = UserRepository(get_db())
        user = _found(repo.get(user_id))
        demotes = body.get("role", "admin") != "admin" or body.get("is_active") is False
        if user["role"] == "admin" and user["is_active"] and demotes and repo.count_active_admins() <= 1:
            raise Conflict("The last active admin cannot be demoted or disabled")
        changes = dict(body)
        if "password" in changes:
            changes["password_hash"] = passwords.hash_password(changes.pop("password"))
        return _found(repo.update(user_id, changes))

    @requires(Role.ADMIN)
    @blp.response(204)
    def delete(self, user_id):
        """Delete a user (not yourself)."""
        if str(user_id) == current_user_id():
            raise Conflict("You cannot delete your own account")
        if not UserRepository(get_db()).delete(user_id):
            raise NotFound("User not found")


def _found(user):
    if user is None:
        raise NotFound("User not found")
    return user
