"""Device-manager fixtures: app factory on the run's database/vhost/broker, client, users and tokens per role."""

from __future__ import annotations

import uuid

import pytest

from tests.support import mqtt as test_mqtt

ROLES = ("admin", "operator", "viewer")
PASSWORD = "correct-horse-battery"
REDIS_URL = "redis://127.0.0.1:6379/0"  # the machine's Redis; each run's limiter keys carry its own prefix


def production_environ(**extra: str) -> dict[str, str]:
    """A complete production environment (every secret set); the tests point the app at the run's servers
    through Settings field overrides, and at Redis for the login limit."""
    return {"IOTHUB_ENV": "production", "JWT_SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
            "DATABASE_URL": "postgresql://iothub:overridden@127.0.0.1:5432/overridden",
            "AMQP_URL": "amqp://iothub:overridden@127.0.0.1:5672/overridden", "MQTT_USERNAME": "device-manager",
            "MQTT_PASSWORD": "overridden", "MQTT_ADMIN_PASSWORD": "overridden", "RATELIMIT_STORAGE_URI": REDIS_URL,
            "TLS_MODE": "upstream",
            "S3_ACCESS_KEY": "overridden", "S3_SECRET_KEY": "overridden", "COMMAND_KEY_KEK": COMMAND_KEY_KEK, **extra}


COMMAND_KEY_KEK = "33" * 32  # the suite's key-encryption key for command keys (hex)


@pytest.fixture(scope="session")
def dm_config(pg_dsn, amqp_url, mqtt_broker, run_id):
    """create_app config for this run (cheap argon2, generous login limit, small page-size cap)."""
    return {
        "environ": production_environ(),
        "database_url": pg_dsn, "amqp_url": amqp_url,
        "mqtt_host": "127.0.0.1", "mqtt_port": mqtt_broker.port, "mqtt_auth": test_mqtt.auth(test_mqtt.COMMANDS),
        "mqtt_admin_auth": test_mqtt.auth(test_mqtt.ADMIN),
        "device_ca_cert": str(mqtt_broker.certs / "device-ca.crt"),
        "device_ca_key": str(mqtt_broker.certs / "device-ca.key"),
        # The session's broker reads the run's CRL file: revocations write it and SIGHUP the broker at once
        # (tests/security/test_crl_sync.py runs the pull distribution against a broker of its own).
        "device_ca_crl_distribution": "file",
        "device_ca_crl": str(mqtt_broker.certs / "device-ca.crl"),
        "mqtt_broker_pidfile": str(mqtt_broker.workdir / "mosquitto.pid"),
        "RATELIMIT_KEY_PREFIX": f"iothub-test-{run_id}",
        "page_size_max": 100, "max_body_bytes": 1024 * 1024,
        "TESTING": True, "PASSWORD_HASH_TIME_COST": 1, "PASSWORD_HASH_MEMORY_COST": 8192,
    }


@pytest.fixture(scope="session")
def make_app(dm_config):
    """Factory: make_app(**overrides) builds another app instance (restart tests); all closed at the end."""
    from device_manager import create_app

    made = []

    def factory(**overrides):
        app = create_app({**dm_config, **overrides})
        made.append(app)
        return app

    yield factory
    for app in made:
        app.extensions["device_manager"].close()


@pytest.fixture(scope="session")
def app(make_app):
    """The shared app instance."""
    return make_app()


@pytest.fixture
def client(app):
    """A test client of the shared app."""
    return app.test_client()


def create_role_users(app, prefix: str = "") -> dict[str, dict]:
    """One user per role, created directly in the app's database: role -> {id, email, role, password}."""
    from device_manager.auth.passwords import hash_password
    from device_manager.repositories.users import UserRepository

    repo = UserRepository(app.extensions["device_manager"].db)
    made = {}
    for role in ROLES:
        email = f"{prefix}{role}-{uuid.uuid4().hex[:8]}@example.test"
        made[role] = {**repo.create(email, hash_password(PASSWORD), role), "password": PASSWORD}
    return made


@pytest.fixture(scope="session")
def users(app):
    """One user per role, created directly in the database: role -> {id, email, role, password}."""
    return create_role_users(app)


@pytest.fixture(scope="session")
def tokens(app, users):
    """role -> {"access_token", "refresh_token", ...} issued without going through login."""
    from device_manager.auth import tokens as issuer

    with app.app_context():
        return {role: issuer.issue(user) for role, user in users.items()}


@pytest.fixture(scope="session")
def auth(tokens):
    """role -> request headers with that role's bearer token; auth[None] is no header."""
    headers = {role: {"Authorization": f"Bearer {t['access_token']}"} for role, t in tokens.items()}
    headers[None] = {}
    return headers


@pytest.fixture
def device_type(app, uid):
    """A fresh device type row (dict) with one metric."""
    import json

    with app.extensions["device_manager"].db.transaction(dict_rows=True) as cur:
        cur.execute("INSERT INTO device_types (name, metrics) VALUES (%s, %s) RETURNING *",
                    (f"type_{uid}", json.dumps([{"type": "temperature", "unit": "Cel", "min": -40, "max": 125}])))
        return cur.fetchone()


@pytest.fixture
def device(app, device_type, uid):
    """A fresh device row (dict) of `device_type`, with the `command_key` (hex) it was provisioned with."""
    with app.extensions["device_manager"].db.transaction(dict_rows=True) as cur:
        cur.execute("INSERT INTO devices (device_id, name, serial_number, device_type_id) VALUES (%s, %s, %s, %s) "
                    "RETURNING *", (f"dev-{uid}", f"Device {uid}", f"SN-{uid}", device_type["id"]))
        row = cur.fetchone()
    return app.extensions["device_manager"].command_keys.issue([row])[0]  # provisioned with its command key


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response has the status and the standard error body; returns the error object."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]
