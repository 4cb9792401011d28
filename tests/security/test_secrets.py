"""Outside development every service refuses to start without its secrets, naming the missing variable; a database
or broker URL without its password counts as missing (docs/security.md "HTTPS, secrets and limits")."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from iothub.settings import Env, SettingsError

PRODUCTION = {
    "IOTHUB_ENV": "production", "DATABASE_URL": "postgresql://iothub:db-pw@db.internal:5432/iothub",
    "AMQP_URL": "amqp://iothub:mq-pw@mq.internal:5672/%2F", "MQTT_USERNAME": "svc", "MQTT_PASSWORD": "mqtt-pw",
    "MQTT_ADMIN_PASSWORD": "mqtt-admin-pw", "COMMAND_KEY_KEK": "33" * 32, "JWT_SECRET_KEY": "k" * 40,
    "RATELIMIT_STORAGE_URI": "redis://redis.internal:6379/0",
    "TLS_CERT_FILE": "/tls/tls.crt", "TLS_KEY_FILE": "/tls/tls.key", "S3_ACCESS_KEY": "s3-user",
    "S3_SECRET_KEY": "s3-pw",
}
COMMON = ("DATABASE_URL", "AMQP_URL")
REQUIRED = {  # service -> (settings module, variables it must refuse to start without)
    "collector": ("collector.settings", (*COMMON, "MQTT_USERNAME", "MQTT_PASSWORD", "TLS_CERT_FILE", "TLS_KEY_FILE")),
    "rule-engine": ("rule_engine.settings", COMMON),
    "notifier": ("notifier.settings", COMMON),
    "device-manager": ("device_manager.settings", (*COMMON, "MQTT_USERNAME", "MQTT_PASSWORD", "MQTT_ADMIN_PASSWORD",
                                                   "JWT_SECRET_KEY", "RATELIMIT_STORAGE_URI", "TLS_CERT_FILE",
                                                   "TLS_KEY_FILE", "S3_ACCESS_KEY", "S3_SECRET_KEY")),
}
CASES = [(service, name) for service, (_, names) in REQUIRED.items() for name in names]


def load(service: str, environ: dict[str, str]):
    """The service's settings as its process loads them, on an explicit environment (the collector: every stage)."""
    import importlib

    settings = importlib.import_module(REQUIRED[service][0]).load(Env(environ))
    if service == "collector":
        from collector.__main__ import parse_stages

        return parse_stages([], settings)
    return settings


@pytest.mark.parametrize("service", REQUIRED)
def test_each_service_starts_with_its_secrets(service):
    assert load(service, PRODUCTION).environment == "production"


@pytest.mark.parametrize(("service", "name"), CASES)
def test_each_service_refuses_a_missing_secret_and_names_it(service, name):
    environ = {k: v for k, v in PRODUCTION.items() if k != name}
    with pytest.raises(SettingsError, match=name):
        load(service, environ)
    if not name.startswith("TLS_"):  # development defaults secrets; HTTPS stays on there too unless TLS_MODE=off
        assert load(service, {**environ, "IOTHUB_ENV": "development"}).environment == "development"


@pytest.mark.parametrize("service", REQUIRED)
@pytest.mark.parametrize(("name", "url"), [("DATABASE_URL", "postgresql://iothub@db.internal/iothub"),
                                           ("AMQP_URL", "amqp://mq.internal:5672/%2F")])
def test_a_url_without_its_password_is_refused(service, name, url):
    with pytest.raises(SettingsError, match=f"{name} must carry a password"):
        load(service, {**PRODUCTION, name: url})


def test_plain_http_outside_development_is_refused_unless_tls_ends_upstream():
    plain = {k: v for k, v in PRODUCTION.items() if not k.startswith("TLS_")}
    with pytest.raises(SettingsError, match="TLS_MODE=off"):
        load("device-manager", {**plain, "TLS_MODE": "off"})
    assert load("device-manager", {**plain, "TLS_MODE": "upstream"}).tls_cert_file is None
    assert load("collector", {**plain, "HTTP_INGEST_ENABLED": "false"}).http_enabled is False  # no listener


def test_collector_stages_need_only_their_own_store_secrets():
    from collector import settings as collector_settings
    from collector.__main__ import parse_stages

    bare = {k: v for k, v in PRODUCTION.items() if not k.startswith(("S3_", "MQTT_", "TLS_"))}
    settings = collector_settings.load(Env(bare))
    assert parse_stages(["sequencer"], settings).stages == ("sequencer",)  # no broker, no listener, no store
    with pytest.raises(SettingsError, match="MQTT_USERNAME"):
        parse_stages(["edge"], settings)
    with pytest.raises(SettingsError, match="S3_ACCESS_KEY"):
        parse_stages(["archive"], settings)
    influx = collector_settings.load(Env({**PRODUCTION, "SERIES_BACKENDS": "postgres,influxdb"}))
    with pytest.raises(SettingsError, match="INFLUXDB_TOKEN"):
        parse_stages(["series"], influx)


def test_simulator_provision_needs_the_database_password():
    from simulator import settings

    with pytest.raises(SettingsError, match="DATABASE_URL must carry a password"):
        settings.load(["provision"], Env({"IOTHUB_ENV": "production", "DATABASE_URL": "postgresql://db/iothub"}))
    assert settings.load(["provision"], Env({"IOTHUB_ENV": "production",
                                             "DATABASE_URL": PRODUCTION["DATABASE_URL"]})).command == "provision"


@pytest.mark.parametrize(("argv", "name"), [(["collector", "edge"], "MQTT_PASSWORD"),
                                            (["rule_engine"], "DATABASE_URL"), (["notifier"], "AMQP_URL"),
                                            (["simulator", "provision"], "DATABASE_URL")])
def test_the_real_process_exits_non_zero_naming_the_variable(argv, name):
    environ = {k: v for k, v in PRODUCTION.items() if k != name}
    if argv[0] == "simulator":
        environ["DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/iothub"  # no password
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV")}
    proc = subprocess.run([sys.executable, "-m", *argv], env={**keep, **environ}, capture_output=True, timeout=60,
                          check=False)
    assert proc.returncode == 2, proc.stderr
    assert name.encode() in proc.stderr and b"Traceback" not in proc.stderr, proc.stderr


def test_the_login_limit_must_be_shared_outside_development():
    with pytest.raises(SettingsError, match="RATELIMIT_STORAGE_URI must be a Redis URL"):
        load("device-manager", {**PRODUCTION, "RATELIMIT_STORAGE_URI": "memory://"})
    assert load("device-manager", {**PRODUCTION, "RATELIMIT_STORAGE_URI": "rediss://r.internal:6380/0"})


def test_the_http_ingest_asks_devices_for_their_token_outside_development():
    assert load("collector", PRODUCTION).http_require_token is True
    assert load("collector", {**PRODUCTION, "IOTHUB_ENV": "development"}).http_require_token is False
    assert load("collector", {**PRODUCTION, "HTTP_REQUIRE_DEVICE_TOKEN": "false"}).http_require_token is False
