"""User use cases: admins manage users (the last active admin stays), people log in and refresh tokens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from device_manager.service.errors import Conflict, NotFound
from device_manager.service.pagination import Page, PageRequest


class UserStore(Protocol):
    """Where users live."""

    def list(self, req: PageRequest) -> Page:
        """A filtered, sorted page."""

    def get(self, user_id) -> dict[str, Any] | None:
        """One user (no password hash)."""

    def get_for_login(self, email: str) -> dict[str, Any] | None:
        """One user with the password hash."""

    def create(self, email: str, password_hash: str, role: str, is_active: bool = True) -> dict[str, Any]:
        """Insert a user."""

    def update(self, user_id, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Apply changes; None when absent."""

    def delete(self, user_id) -> bool:
        """Delete; False when absent."""

    def count_active_admins(self) -> int:
        """Active users with the admin role."""

    def ensure_admin(self, email: str, password_hash: Callable[[], str]) -> bool:
        """Insert an admin unless one exists; True when inserted."""


class TokenStore(Protocol):
    """Revoked token ids."""

    def revoke(self, jti: str, expires_at: datetime) -> None:
        """Record a revoked token (idempotent)."""

    def is_usable(self, jti: str, user_id: str, role: str | None, password_version: int = 0) -> bool:
        """Not revoked, and the user still exists, is active, has the token's role and that password version."""


class PasswordHasher(Protocol):
    """Hashes and checks passwords."""

    def hash_password(self, password: str) -> str:
        """A hash to store."""

    def verify_password(self, stored: str | None, password: str) -> bool:
        """True when password matches stored (False for None)."""


class UserService:
    """Users and credentials."""

    def __init__(self, users: UserStore, hasher: PasswordHasher, tokens: TokenStore):
        self.users = users
        self.hasher = hasher
        self.tokens = tokens

    def list(self, req: PageRequest) -> Page:
        """A page of users."""
        return self.users.list(req)

    def get(self, user_id) -> dict[str, Any]:
        """One user; NotFound when unknown."""
        return _found(self.users.get(user_id))

    def create(self, email: str, password: str, role: str, is_active: bool = True) -> dict[str, Any]:
        """Create a user with a hashed password."""
        return self.users.create(email, self.hasher.hash_password(password), role, is_active)

    def update(self, user_id, changes: dict[str, Any]) -> dict[str, Any]:
        """Change email, password, role or active flag; the last active admin cannot lose admin rights."""
        user = self.get(user_id)
        demotes = changes.get("role", "admin") != "admin" or changes.get("is_active") is False
        if user["role"] == "admin" and user["is_active"] and demotes and self.users.count_active_admins() <= 1:
            raise Conflict("The last active admin cannot be demoted or disabled")
        changes = dict(changes)
        if "password" in changes:
            changes["password_hash"] = self.hasher.hash_password(changes.pop("password"))
        return _found(self.users.update(user_id, changes))

    def delete(self, user_id, actor_id: str | None) -> None:
        """Delete a user other than the actor."""
        if str(user_id) == actor_id:
            raise Conflict("You cannot delete your own account")
        if not self.users.delete(user_id):
            raise NotFound("User not found")

    def authenticate(self, email: str, password: str) -> dict[str, Any] | None:
        """The active user with these credentials, None otherwise (the same answer for every failure)."""
        user = self.users.get_for_login(email)
        ok = self.hasher.verify_password(user["password_hash"] if user else None, password)
        return user if ok and user["is_active"] else None

    def find(self, user_id) -> dict[str, Any] | None:
        """The user, None when it does not exist."""
        return self.users.get(user_id)

    def active(self, user_id) -> dict[str, Any] | None:
        """The user when it still exists and is active."""
        user = self.find(user_id)
        return user if user and user["is_active"] else None

    def revoke_token(self, jti: str, expires_at: datetime) -> None:
        """Revoke a token until it would have expired anyway."""
        self.tokens.revoke(jti, expires_at)

    def token_usable(self, jti: str, user_id: str, role: str | None, password_version: int = 0) -> bool:
        """A token stays usable while not revoked and its user is active with the token's role and password."""
        return self.tokens.is_usable(jti, user_id, role, password_version)

    def ensure_admin(self, email: str, password: str) -> bool:
        """Create the first admin when no admin exists yet (hashing only then); True when created."""
        return self.users.ensure_admin(email, lambda: self.hasher.hash_password(password))


def _found(user):
    if user is None:
        raise NotFound("User not found")
    return user
