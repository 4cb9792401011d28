"""Every environment variable the CRL sync reads, in one frozen object."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from iothub.settings import DEVELOPMENT, Env, SettingsError


@dataclass(frozen=True)
class Settings:
    """CRL sync configuration."""

    environment: str
    log_level: str
    url: str  # the device manager's GET /api/v1/pki/device-ca.crl
    crl_file: str  # where the broker reads the CRL (its crlfile)
    device_ca_cert: str  # only a CRL this CA signed is installed
    tls_ca: str | None  # CA of the device manager's HTTPS certificate (None: the system's)
    interval_s: float  # between polls: how long a revoked certificate may still complete a handshake
    max_backoff_s: float  # longest wait between retries after errors
    timeout_s: float  # per request
    broker_pidfile: str | None  # the broker's pid; else the one process named broker_process (shared PID namespace)
    broker_process: str
    health_port: int  # /healthz (alive) and /readyz (the last poll succeeded); 0: none


def load(env: Env | None = None) -> Settings:
    """Read the CRL sync's settings from the environment (or the given Env)."""
    env = env or Env()
    settings = Settings(
        environment=env.environment,
        log_level=env.str("LOG_LEVEL", "INFO"),
        url=env.str("CRL_SYNC_URL"),
        crl_file=env.str("CRL_SYNC_FILE"),
        device_ca_cert=env.str("DEVICE_CA_CERT_FILE"),
        tls_ca=env.optional("CRL_SYNC_TLS_CA"),
        interval_s=env.float("CRL_SYNC_INTERVAL_S", 2.0),
        max_backoff_s=env.float("CRL_SYNC_MAX_BACKOFF_S", 30.0),
        timeout_s=env.float("CRL_SYNC_TIMEOUT_S", 5.0),
        broker_pidfile=env.optional("MQTT_BROKER_PIDFILE"),
        broker_process=env.str("MQTT_BROKER_PROCESS", "mosquitto"),
        health_port=env.int("CRL_SYNC_HEALTH_PORT", 9150),
    )
    scheme = urlsplit(settings.url).scheme
    if scheme not in ("https", "http") or (scheme == "http" and settings.environment != DEVELOPMENT):
        raise SettingsError("CRL_SYNC_URL must be an https:// URL (http:// only with IOTHUB_ENV=development)")
    if settings.interval_s <= 0 or settings.max_backoff_s < settings.interval_s or settings.timeout_s <= 0:
        raise SettingsError("CRL_SYNC_INTERVAL_S and CRL_SYNC_TIMEOUT_S must be > 0, "
                            "CRL_SYNC_MAX_BACKOFF_S >= CRL_SYNC_INTERVAL_S")
    return settings
