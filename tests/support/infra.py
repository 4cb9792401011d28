"""Per-run PostgreSQL databases and RabbitMQ vhosts on the machine's real servers."""

from __future__ import annotations

import subprocess

import psycopg2

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
AMQP_BASE = "amqp://guest:guest@127.0.0.1:5672"


def create_database(name: str) -> str:
    """Create an empty database with the schema applied; returns its DSN."""
    from iothub.db import migrate

    _admin(f'CREATE DATABASE "{name}"')
    dsn = f"postgresql://postgres@127.0.0.1:5432/{name}"
    migrate.apply(dsn)
    return dsn


def drop_database(name: str) -> None:
    """Drop a test database even if connections are still open."""
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(sql: str) -> None:
    conn = psycopg2.connect(PG_ADMIN_DSN)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def create_vhost(name: str) -> str:
    """Create a RabbitMQ vhost the guest user may use; returns its AMQP URL."""
    _rabbitmqctl("add_vhost", name)
    _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return f"{AMQP_BASE}/{name}"


def delete_vhost(name: str) -> None:
    """Delete a vhost and everything in it."""
    _rabbitmqctl("delete_vhost", name, check=False)


def _rabbitmqctl(*args: str, check: bool = True) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=check, capture_output=True, timeout=60)
