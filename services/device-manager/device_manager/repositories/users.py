"""Users and the token blocklist."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from device_manager.repositories.base import Filters, escape_like, fetch_page
from device_manager.service.pagination import Page, PageRequest
from iothub.db import Database

COLUMNS = "id, email, role, is_active, password_version, created_at, updated_at"
SORT = {"email": "lower(email)", "role": "role", "created_at": "created_at", "updated_at": "updated_at"}
_ADMIN_LOCK = 0x10A0_0001  # advisory lock id: one worker at a time bootstraps the first admin


class UserRepository:
    """CRUD on users; password hashes never leave this module except for login verification."""

    def __init__(self, db: Database):
        self.db = db

    def list(self, req: PageRequest) -> Page:
        """A filtered, sorted page of users."""
        f = Filters()
        if "role" in req.filters:
            f.add("role = %s", req.filters["role"])
        if "is_active" in req.filters:
            f.add("is_active = %s", req.filters["is_active"])
        if "q" in req.filters:
            f.add("email ILIKE %s", f"%{escape_like(req.filters['q'])}%")
        return fetch_page(self.db, COLUMNS, "users", f, req, sort_columns=SORT, tiebreak="id")

    def get(self, user_id: str) -> dict[str, Any] | None:
        """One user by id."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"SELECT {COLUMNS} FROM users WHERE id = %s", (user_id,))  # noqa: S608
            return cur.fetchone()

    def get_for_login(self, email: str) -> dict[str, Any] | None:
        """The user with that email (case-insensitive), including the password hash."""
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"SELECT {COLUMNS}, password_hash FROM users WHERE lower(email) = lower(%s)",  # noqa: S608
                        (email,))
            return cur.fetchone()

    def create(self, email: str, password_hash: str, role: str, is_active: bool = True) -> dict[str, Any]:
        """Insert a user; a duplicate email raises UniqueViolation (409)."""
        with self.db.transaction(dict_rows=True) as cur:
            query = (f"INSERT INTO users (email, password_hash, role, is_active) "  # noqa: S608
                     f"VALUES (%s, %s, %s, %s) RETURNING {COLUMNS}")
            cur.execute(query, (email, password_hash, role, is_active))
            return cur.fetchone()

    def update(self, user_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Apply whitelisted column changes; None when the user does not exist."""
        allowed = {k: v for k, v in changes.items() if k in ("email", "password_hash", "role", "is_active")}
        if not allowed:
            return self.get(user_id)
        sets = ", ".join(f"{k} = %s" for k in allowed)
        if "password_hash" in allowed:  # the sessions opened with the old password end (is_usable)
            sets += ", password_version = password_version + 1"
        with self.db.transaction(dict_rows=True) as cur:
            cur.execute(f"UPDATE users SET {sets}, updated_at = now() WHERE id = %s RETURNING {COLUMNS}",  # noqa: S608
                        [*allowed.values(), user_id])
            return cur.fetchone()

    def delete(self, user_id: str) -> bool:
        """Delete a user; False when there was none."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM users WHERE id = %s", (user_id,))
            return cur.rowcount == 1

    def count_active_admins(self) -> int:
        """How many active admins exist."""
        with self.db.transaction() as cur:
            cur.execute("SELECT count(*) FROM users WHERE role = 'admin' AND is_active")
            return cur.fetchone()[0]

    def ensure_admin(self, email: str, password_hash: Callable[[], str]) -> bool:
        """Create the first admin when no admin exists (hashing only then); True when one was created."""
        with self.db.transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_ADMIN_LOCK,))
            cur.execute("SELECT 1 FROM users WHERE role = 'admin' LIMIT 1")
            if cur.fetchone():
                return False
            cur.execute("INSERT INTO users (email, password_hash, role) VALUES (%s, %s, 'admin') "
                        "ON CONFLICT DO NOTHING", (email, password_hash()))
            return cur.rowcount == 1


class TokenBlocklist:
    """Revoked JWT ids, in PostgreSQL so revocation survives restarts and is shared by workers."""

    def __init__(self, db: Database):
        self.db = db

    def revoke(self, jti: str, expires_at: datetime) -> None:
        """Record a revoked token (idempotent) and drop entries that have expired anyway."""
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO token_blocklist (jti, expires_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        (jti, expires_at))
            cur.execute("DELETE FROM token_blocklist WHERE expires_at < now() - interval '1 day'")

    def is_usable(self, jti: str, user_id: str, role: str | None, password_version: int = 0) -> bool:
        """One query per request: not revoked; the user exists, is active, with the token's role and password."""
        try:
            uid = uuid.UUID(str(user_id))  # compare as uuid so the primary key serves the lookup
        except ValueError:
            return False
        with self.db.read() as cur:
            cur.execute("SELECT EXISTS (SELECT 1 FROM token_blocklist WHERE jti = %s), "
                        "(SELECT role FROM users WHERE id = %s AND is_active AND password_version = %s)",
                        (jti, uid, password_version))
            revoked, current_role = cur.fetchone()
            return not revoked and current_role is not None and current_role == role
