"""Every environment variable the device manager reads, in one frozen object."""

from __future__ import annotations

from dataclasses import dataclass

from iothub.command_keys import KeyWrapError, parse_kek
from iothub.mqtt_tls import MqttAuth
from iothub.settings import (
    DEVELOPMENT,
    Env,
    SettingsError,
    mqtt_fields,
    require_mqtt_secrets,
    require_secrets,
    service_fields,
    store_fields,
    tls_fields,
)

_SHARED_LIMIT_SCHEMES = ("redis://", "rediss://", "redis+sentinel://")
CRL_DISTRIBUTIONS = ("pull", "file")
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
    mqtt_auth: MqttAuth
    mqtt_client_id: str
    mqtt_topic_prefix: str
    mqtt_keepalive: int
    mqtt_publish_timeout_s: float
    command_qos: int  # commands count as sent once this QoS handshake completes (PUBCOMP at 2, PUBACK at 1)
    # device broker credentials (docs/security.md): the dynsec admin account and the device CA
    mqtt_admin_auth: MqttAuth
    device_ca_cert: str | None
    device_ca_key: str | None
    # pull: brokers fetch GET /api/v1/pki/device-ca.crl (iothub.crl_sync); file: a revocation writes
    # device_ca_crl and SIGHUPs the pid in mqtt_broker_pidfile (make run and the tests: one machine)
    device_ca_crl_distribution: str
    device_ca_crl: str | None  # file distribution: where the broker reads the device CA's CRL
    mqtt_broker_pidfile: str | None  # file distribution: SIGHUP makes Mosquitto reread the CRL
    # auth
    jwt_secret_key: str
    access_token_minutes: int
    refresh_token_days: int
    admin_email: str | None
    admin_password: str | None
    login_rate_limit: str
    ratelimit_storage_uri: str  # shared by every worker and pod (redis://...); memory:// only in development
    ratelimit_key_prefix: str  # keeps deployments sharing one Redis apart
    trusted_proxy_hops: int  # proxies in front whose X-Forwarded-For is believed; 0: the socket's peer address
    # HTTPS (served by gunicorn, gunicorn.conf.py)
    tls_mode: str  # on | upstream | off (iothub.settings.tls_fields)
    tls_cert_file: str | None
    tls_key_file: str | None
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
    settings = Settings(
        **common,
        **mqtt_fields(env, client_id="iothub-device-manager"),
        db_pool_max=env.int("DB_POOL_MAX", 10),
        prometheus_multiproc_dir=env.optional("PROMETHEUS_MULTIPROC_DIR"),
        mqtt_publish_timeout_s=env.float("MQTT_PUBLISH_TIMEOUT_S", 5.0),
        command_qos=_command_qos(env),
        mqtt_admin_auth=MqttAuth(ca_file=env.optional("MQTT_TLS_CA"),
                                 username=env.str("MQTT_ADMIN_USERNAME", "iothub-admin"),
                                 password=env.optional("MQTT_ADMIN_PASSWORD")),
        device_ca_cert=env.optional("DEVICE_CA_CERT_FILE"),
        device_ca_key=env.optional("DEVICE_CA_KEY_FILE"),
        device_ca_crl_distribution=_crl_distribution(env),
        device_ca_crl=env.optional("DEVICE_CA_CRL_FILE"),
        mqtt_broker_pidfile=env.optional("MQTT_BROKER_PIDFILE"),
        jwt_secret_key=env.secret("JWT_SECRET_KEY", dev_default="development-only-jwt-secret-change-me"),
        access_token_minutes=env.int("JWT_ACCESS_TOKEN_MINUTES", 15),
        refresh_token_days=env.int("JWT_REFRESH_TOKEN_DAYS", 7),
        admin_email=env.optional("ADMIN_EMAIL"),
        admin_password=env.optional("ADMIN_PASSWORD"),
        login_rate_limit=env.str("LOGIN_RATE_LIMIT", "10 per minute"),
        ratelimit_storage_uri=env.secret("RATELIMIT_STORAGE_URI", dev_default="memory://"),
        ratelimit_key_prefix=env.str("RATELIMIT_KEY_PREFIX", "iothub"),
        trusted_proxy_hops=env.int("TRUSTED_PROXY_HOPS", 0),
        **tls_fields(env),
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
    _require_secrets(settings)
    return settings


def _require_secrets(s: Settings) -> None:
    """Outside development: the store credentials in use, the broker account; and a sane proxy count."""
    needed = {"S3_ACCESS_KEY": s.s3_access_key, "S3_SECRET_KEY": s.s3_secret_key} if s.archive_backend == "s3" else {}
    if s.series_backend == "influxdb":
        needed["INFLUXDB_TOKEN"] = s.influxdb_token
    require_secrets(s.environment, needed)
    require_mqtt_secrets(s)  # the command publisher
    # The credentials adapter drives Dynamic Security as its own admin account (docs/security.md).
    require_secrets(s.environment, {"MQTT_ADMIN_PASSWORD": s.mqtt_admin_auth.password})
    if s.environment != DEVELOPMENT and not s.ratelimit_storage_uri.startswith(_SHARED_LIMIT_SCHEMES):
        raise SettingsError("RATELIMIT_STORAGE_URI must be a Redis URL outside development: a per-process count "
                            "does not hold across workers and pods")
    if s.trusted_proxy_hops < 0:
        raise SettingsError("TRUSTED_PROXY_HOPS must be >= 0")


def _crl_distribution(env: Env) -> str:
    mode = env.str("DEVICE_CA_CRL_DISTRIBUTION", "pull")
    if mode not in CRL_DISTRIBUTIONS:
        raise SettingsError(f"DEVICE_CA_CRL_DISTRIBUTION must be pull or file, got {mode!r}")
    if mode == "file" and not env.optional("DEVICE_CA_CRL_FILE"):
        raise SettingsError("DEVICE_CA_CRL_DISTRIBUTION=file needs DEVICE_CA_CRL_FILE")
    return mode


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
