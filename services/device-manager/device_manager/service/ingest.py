"""HTTP ingest tokens: random, shown once, stored as sha256 hex (what the collector compares)."""

from __future__ import annotations

import hashlib
import secrets


def new_ingest_token() -> tuple[str, str]:
    """A fresh token and its sha256 hex digest."""
    token = secrets.token_urlsafe(32)
    return token, hash_ingest_token(token)


def hash_ingest_token(token: str) -> str:
    """The digest stored in devices.ingest_token_hash."""
    return hashlib.sha256(token.encode()).hexdigest()
