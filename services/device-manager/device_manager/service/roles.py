"""The role matrix: viewer reads, operator runs the fleet, admin does everything."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A user's role; each includes the rights of the ones below it."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


ROLES = tuple(r.value for r in Role)
_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}

# What each minimum role means, for the docs and the role-matrix tests.
MATRIX = {
    Role.VIEWER: "read everything except users",
    Role.OPERATOR: "devices, configs, commands, OTA, rules, subscriptions; acknowledge and resolve events",
    Role.ADMIN: "users, device types and everything else",
}


def allows(role: str | None, minimum: Role) -> bool:
    """True when `role` is at least `minimum`; unknown roles get nothing."""
    try:
        return _RANK[Role(role)] >= _RANK[minimum]
    except ValueError:
        return False
