"""Apply the schema migrations with yoyo: `python -m iothub.db.migrate [DATABASE_URL]`."""

from __future__ import annotations

import sys
from pathlib import Path

from yoyo import get_backend, read_migrations

from iothub.settings import Env

MIGRATIONS = Path(__file__).with_name("migrations")


def apply(dsn: str) -> int:
    """Apply every pending migration under a lock; returns how many ran."""
    backend = get_backend(dsn)  # yoyo's postgresql:// backend is psycopg2
    migrations = read_migrations(str(MIGRATIONS))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return len(pending)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; the URL comes from the argument or DATABASE_URL."""
    args = sys.argv[1:] if argv is None else argv
    dsn = args[0] if args else (Env().optional("DATABASE_URL") or "")
    if not dsn:
        print("usage: python -m iothub.db.migrate DATABASE_URL (or set DATABASE_URL)", file=sys.stderr)
        return 2
    count = apply(dsn)
    print(f"applied {count} migration(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
