"""PostgreSQL pool and schema migrations."""

from iothub.db.pool import Database

__all__ = ["Database"]
