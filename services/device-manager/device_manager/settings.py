"""Every environment variable the device manager reads, in one frozen object."""

from __future__ import annotations

from dataclasses import dataclass

from iothub.command_keys import KeyWrapError, parse_kek
from iothub.settings import Env, SettingsError, mqtt_fields, service_fields, store_fields

COMMAND_QOS = (1, 2)  # 2 is the device spec's REQ-QOS-001; 1 for brokers or bridges that cannot do QoS 2


@dataclass(frozen=True)
class Settings:
    """Device-manager configuration."""

    environment: str
    log_level: str
    database_url: str
    amqp_url: str
    db_pool_max: int
    prometheus_multiproc_dir: str | None  # set for gunicorn with several workers (prometheus_client reads it too)
    # MQTT command publisher
    mqtt_host: str
    mqtt_port: int
    mqtt_username: str | None
    mqtt_password: str | None
    mqtt_client_id: str
    mqtt_topic_prefix: str
    mqtt_keepalive: int
    mqtt_publish_timeout_s: float
    command_qos: int  # commands count as sent once this QoS handshake completes (PUBCOMP at 2, PUBACK at 1)
    # auth
    jwt_secret_key: str
    access_token_minutes: int
    refresh_token_days: int
    admin_email: str | None
    admin_password: str | None
    login_rate_limit: str
    # HTTP
    page_size_default: int
    page_size_max: int
    max_body_bytes: int
    bulk_max: int
    export_batch_rows: int  # rows per streamed chunk (a Parquet row group) of /exports
    # series and archive (telemetry queries and raw archive endpoints)
    series_backend: str  # postgres | influxdb
    influxdb_url: str | None
    influxdb_token: str | None
    influxdb_org: str
    influxdb_bucket: str
    archive_backend: str  # s3 | filesystem
    archive_dir: str
    archive_gzip: bool
    archive_window_s: int  # must match the collector's, so listings find windows starting before the range
    s3_endpoint: str | None
    s3_access_key: str | None
    s3_secret_key: str | None
    s3_bucket: str
    s3_secure: bool
    # signed commands and firmware (docs/security.md, Signed commands and firmware)
    command_key_kek: str  # COMMAND_KEY_KEK: encrypts per-device command keys at rest; no default anywhere
    command_signature_ttl_s: int  # a signed command is valid on the device this long after it is published
    firmware_bucket: str
    firmware_url_ttl_s: int  # lifetime of start_ota's pre-signed download URL
    firmware_max_bytes: int
    firmware_public_endpoint: str | None  # host:port devices reach the object store at (default S3_ENDPOINT)


def load(env: Env | None = None) -> Settings:
    """Read the device manager's settings from the environment (or the given Env)."""
    env = env or Env()
    common = service_fields(env)
    environment = common["environment"]
    return Settings(
        **common,
        **mqtt_fields(env, client_id="iothub-device-manager"),
        db_pool_max=env.int("DB_POOL_MAX", 10),
        prometheus_multiproc_dir=env.optional("PROMETHEUS_MULTIPROC_DIR"),
        mqtt_publish_timeout_s=env.float("MQTT_PUBLISH_TIMEOUT_S", 5.0),
        command_qos=_command_qos(env),
        jwt_secret_key=env.secret("JWT_SECRET_KEY", environment=environment,
                                  dev_default="development-only-jwt-secret-change-me"),
        access_token_minutes=env.int("JWT_ACCESS_TOKEN_MINUTES", 15),
        refresh_token_days=env.int("JWT_REFRESH_TOKEN_DAYS", 7),
        admin_email=env.optional("ADMIN_EMAIL"),
        admin_password=env.optional("ADMIN_PASSWORD"),
        login_rate_limit=env.str("LOGIN_RATE_LIMIT", "10 per minute"),
        page_size_default=env.int("PAGE_SIZE_DEFAULT", 50),
        page_size_max=env.int("PAGE_SIZE_MAX", 500),
        max_body_bytes=env.int("MAX_BODY_BYTES", 2 * 1024 * 1024),
        bulk_max=env.int("BULK_MAX", 1000),
        export_batch_rows=env.int("EXPORT_BATCH_ROWS", 10_000),
        series_backend=env.str("SERIES_BACKEND", "postgres"),
        **store_fields(env),
        command_key_kek=_kek(env),
        command_signature_ttl_s=env.int("COMMAND_SIGNATURE_TTL_S", 3600),
        firmware_bucket=env.str("FIRMWARE_BUCKET", "iot-firmware"),
        firmware_url_ttl_s=env.int("FIRMWARE_URL_TTL_S", 3600),
        firmware_max_bytes=env.int("FIRMWARE_MAX_BYTES", 64 * 1024 * 1024),
        firmware_public_endpoint=env.optional("FIRMWARE_PUBLIC_ENDPOINT"),
    )


def _command_qos(env: Env) -> int:
    qos = env.int("COMMAND_QOS", 2)
    if qos not in COMMAND_QOS:
        raise SettingsError(f"COMMAND_QOS must be 1 or 2, got {qos}")
    return qos


def _kek(env: Env) -> str:
    text = env.str("COMMAND_KEY_KEK")
    try:
        parse_kek(text)
    except KeyWrapError as exc:
        raise SettingsError(str(exc)) from exc
    return text
