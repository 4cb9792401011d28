"""Argon2 password hashing (argon2-cffi), tunable so tests do not pay production cost."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
# Verified against when the email is unknown, so timing does not reveal which emails exist.
_DUMMY = _hasher.hash("not-a-real-password")


def configure(time_cost: int | None = None, memory_cost: int | None = None) -> None:
    """Replace the hasher's parameters (tests use cheap ones)."""
    global _hasher, _DUMMY
    if time_cost or memory_cost:
        _hasher = PasswordHasher(time_cost=time_cost or 1, memory_cost=memory_cost or 8192, parallelism=1)
        _DUMMY = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    """An argon2id hash string."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches; always spends one verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
