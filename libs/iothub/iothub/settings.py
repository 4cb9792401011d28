"""Typed reads of environment variables; each service's settings module is the only caller."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

from iothub.mqtt_tls import MqttAuth

DEVELOPMENT = "development"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """A missing or malformed environment variable."""


class Env:
    """Reads variables from one mapping and records every name it was asked for."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self._environ = os.environ if environ is None else environ
        self.names: set[str] = set()

    def str(self, name: str, default: str | None = None) -> str:
        """A string; required when no default is given."""
        self.names.add(name)
        value = self._environ.get(name)
        if value is None or value == "":
            if default is None:
                raise SettingsError(f"{name} must be set")
            return default
        return value

    def optional(self, name: str) -> str | None:
        """A string that may be absent."""
        self.names.add(name)
        return self._environ.get(name) or None

    def int(self, name: str, default: int) -> int:
        """An integer."""
        raw = self.str(name, str(default))
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None

    def float(self, name: str, default: float) -> float:
        """A float."""
        raw = self.str(name, str(default))
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from None

    def bool(self, name: str, default: bool) -> bool:
        """A boolean spelled 1/0, true/false, yes/no or on/off."""
        raw = self.str(name, "true" if default else "false").strip().lower()
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise SettingsError(f"{name} must be a boolean, got {raw!r}")

    def list(self, name: str, default: str = "") -> tuple[str, ...]:
        """A comma-separated list."""
        raw = self.str(name, default) if default else (self.optional(name) or "")
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    @property
    def environment(self) -> str:
        """IOTHUB_ENV, production unless set: only development may default a secret."""
        return self.str("IOTHUB_ENV", "production")

    def secret(self, name: str, *, dev_default: str | None = None) -> str | None:
        """A secret: required outside development mode, where a fixed default would be a hole."""
        value = self.optional(name)
        if value:
            return value
        environment = self.environment
        if environment == DEVELOPMENT:
            return dev_default
        raise SettingsError(f"{name} must be set when IOTHUB_ENV is {environment!r}")

    def secret_url(self, name: str, *, dev_default: str) -> str:
        """A URL that carries its password (scheme://user:PASSWORD@host/...), required as such outside development."""
        value = self.secret(name, dev_default=dev_default)
        require_url_password(self.environment, name, value)
        return value


def require_secrets(environment: str, values: Mapping[str, str | None]) -> None:
    """Outside development, refuse the first of `values` (variable name -> value read) that is empty."""
    if environment == DEVELOPMENT:
        return
    for name, value in values.items():
        if not value:
            raise SettingsError(f"{name} must be set when IOTHUB_ENV is {environment!r}")


def require_mqtt_secrets(settings) -> None:
    """Outside development a service that talks to the broker has its own account (MQTT_USERNAME, MQTT_PASSWORD)."""
    require_secrets(settings.environment, {"MQTT_USERNAME": settings.mqtt_auth.username,
                                           "MQTT_PASSWORD": settings.mqtt_auth.password})


def require_url_password(environment: str, name: str, url: str) -> None:
    """Outside development, refuse a URL without a password in it (the password is the secret, not a default)."""
    if environment != DEVELOPMENT and not urlsplit(url).password:
        raise SettingsError(f"{name} must carry a password (scheme://user:PASSWORD@host/...) when IOTHUB_ENV "
                            f"is {environment!r}")


T = TypeVar("T")


def load_or_exit(service: str, loader: Callable[[], T]) -> T:
    """Settings from `loader`, or the settings error on stderr and exit status 2 (no traceback to dig through)."""
    try:
        return loader()
    except SettingsError as exc:
        print(f"{service}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/iothub"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def host_ports(text: str, default_port: int, *, name: str) -> tuple[tuple[str, int], ...]:
    """'host:port,host,[::1]:port' -> ((host, port), ...), ports defaulting, distinct; SettingsError names `name`."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        host, colon, port = part.rpartition(":")
        if not colon or "]" in port:  # no port ("host", or "[::1]": the colon found is inside the address)
            host, port = part, str(default_port)
        host = host.strip("[]")
        try:
            pair = (host, int(port))
        except ValueError:
            raise SettingsError(f"{name}: bad broker {part!r}, want host:port") from None
        if not host or not 0 < pair[1] < 65536:
            raise SettingsError(f"{name}: bad broker {part!r}")
        out.append(pair)
    if len(set(out)) != len(out):
        raise SettingsError(f"{name} names a broker twice")
    return tuple(out)


def service_fields(env: Env) -> dict:
    """Fields every service's settings share: run mode, log level, database and broker URLs."""
    return {
        "environment": env.environment,
        "log_level": env.str("LOG_LEVEL", "INFO"),
        # Outside development both must name their server and carry the password (docs/security.md).
        "database_url": env.secret_url("DATABASE_URL", dev_default=DEFAULT_DATABASE_URL),
        "amqp_url": env.secret_url("AMQP_URL", dev_default=DEFAULT_AMQP_URL),
    }


def mqtt_fields(env: Env, *, client_id: str) -> dict:
    """MQTT connection fields of the services that talk to the broker (collector, device manager)."""
    return {
        "mqtt_host": env.str("MQTT_HOST", "127.0.0.1"),
        "mqtt_port": env.int("MQTT_PORT", 1883),
        # TLS (on when MQTT_TLS_CA names the CA file) and the service's own account (docs/security.md).
        "mqtt_auth": MqttAuth(ca_file=env.optional("MQTT_TLS_CA"), username=env.optional("MQTT_USERNAME"),
                              password=env.optional("MQTT_PASSWORD"), cert_file=env.optional("MQTT_TLS_CERT"),
                              key_file=env.optional("MQTT_TLS_KEY")),
        "mqtt_client_id": env.str("MQTT_CLIENT_ID", client_id),
        "mqtt_topic_prefix": env.str("MQTT_TOPIC_PREFIX", ""),
        "mqtt_keepalive": env.int("MQTT_KEEPALIVE", 30),
    }


def store_fields(env: Env) -> dict:
    """Series and archive store settings, shared by the writers (collector) and the readers (device manager)."""
    return {
        "influxdb_url": env.optional("INFLUXDB_URL"),
        "influxdb_token": env.optional("INFLUXDB_TOKEN"),
        "influxdb_org": env.str("INFLUXDB_ORG", "iot-org"),
        "influxdb_bucket": env.str("INFLUXDB_BUCKET", "iot-metrics"),
        "archive_backend": env.str("ARCHIVE_BACKEND", "s3"),
        "archive_dir": env.str("ARCHIVE_DIR", "./.run/archive"),
        "archive_gzip": env.bool("ARCHIVE_GZIP", False),
        "archive_window_s": env.int("ARCHIVE_WINDOW_S", 300),
        "s3_endpoint": env.optional("S3_ENDPOINT"),
        "s3_access_key": env.optional("S3_ACCESS_KEY"),
        "s3_secret_key": env.optional("S3_SECRET_KEY"),
        "s3_bucket": env.str("S3_BUCKET", "iot-data"),
        "s3_secure": env.bool("S3_SECURE", False),
    }


TLS_MODES = ("on", "upstream", "off")


def tls_fields(env: Env, *, required: bool = True) -> dict:
    """HTTPS listener settings: TLS_MODE on (serve TLS with TLS_CERT_FILE/TLS_KEY_FILE), upstream (an ingress or
    proxy in front terminates TLS) or off (plain HTTP, development only). `required=False` leaves the check to
    require_tls, for processes that may not open the listener."""
    fields = {"tls_mode": env.str("TLS_MODE", "on").lower(), "tls_cert_file": env.optional("TLS_CERT_FILE"),
              "tls_key_file": env.optional("TLS_KEY_FILE")}
    if fields["tls_mode"] not in TLS_MODES:
        raise SettingsError(f"TLS_MODE must be one of {', '.join(TLS_MODES)}, got {fields['tls_mode']!r}")
    if required:
        require_tls(env.environment, fields)
    return fields


def require_tls(environment: str, fields: Mapping[str, str | None]) -> None:
    """Refuse plain HTTP outside development, and TLS_MODE=on without its certificate and key."""
    if fields["tls_mode"] == "off" and environment != DEVELOPMENT:
        raise SettingsError("TLS_MODE=off (plain HTTP) is allowed only when IOTHUB_ENV is development; "
                            "use TLS_MODE=upstream behind an ingress that terminates TLS")
    if fields["tls_mode"] == "on" and not (fields["tls_cert_file"] and fields["tls_key_file"]):
        raise SettingsError("TLS_CERT_FILE and TLS_KEY_FILE must be set when TLS_MODE is on "
                            "(or TLS_MODE=upstream behind an ingress that terminates TLS)")
