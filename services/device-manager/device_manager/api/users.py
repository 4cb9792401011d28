"""Users CRUD (admin only) at /api/v1/users."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from device_manager.api.pagination import page_response
from device_manager.auth.roles import current_user_id, requires
from device_manager.extensions import services
from device_manager.schemas.users import UserCreateSchema, UserListArgs, UserPageSchema, UserSchema, UserUpdateSchema
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
        return page_response(services().users.list(req), req)

    @requires(Role.ADMIN)
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    def post(self, body):
        """Create a user."""
        return services().users.create(body["email"], body["password"], body["role"], body["is_active"])


@blp.route("/<uuid:user_id>")
class UserItem(MethodView):
    """One user."""

    @requires(Role.ADMIN)
    @blp.response(200, UserSchema)
    def get(self, user_id):
        """Read a user."""
        return services().users.get(user_id)

    @requires(Role.ADMIN)
    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema)
    def patch(self, body, user_id):
        """Change email, password, role or active flag; the last active admin cannot lose admin rights."""
        return services().users.update(user_id, body)

    @requires(Role.ADMIN)
    @blp.response(204)
    def delete(self, user_id):
        """Delete a user (not yourself)."""
        services().users.delete(user_id, current_user_id())
