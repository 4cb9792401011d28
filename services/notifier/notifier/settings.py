"""Every environment variable the notifier reads, in one frozen object."""

from __future__ import annotations

from dataclasses import dataclass

from iothub.settings import Env, SettingsError, service_fields

SMTP_TLS_MODES = ("none", "starttls", "ssl")


@dataclass(frozen=True)
class Settings:
    """Notifier configuration."""

    environment: str
    log_level: str
    database_url: str
    amqp_url: str
    metrics_port: int
    # email channel: enabled when SMTP_HOST is set
    smtp_host: str | None
    smtp_port: int
    smtp_username: str | None
    smtp_password: str | None
    smtp_from: str
    smtp_tls: str
    smtp_timeout: float
    # webhook channel
    webhook_timeout: float
    # delivery schedule
    max_attempts: int
    backoff_base: float
    backoff_cap: float
    workers: int
    per_target_limit: int
    poll_interval: float
    lease_seconds: float
    # event-change consumer
    batch_size: int
    batch_wait: float


def load(env: Env | None = None) -> Settings:
    """Read the notifier's settings from the environment (or the given Env)."""
    env = env or Env()
    webhook_timeout = env.float("WEBHOOK_TIMEOUT", 5.0)
    smtp_timeout = env.float("SMTP_TIMEOUT", 10.0)
    settings = Settings(
        **service_fields(env),
        metrics_port=env.int("METRICS_PORT", 9130),
        smtp_host=env.optional("SMTP_HOST"),
        smtp_port=env.int("SMTP_PORT", 25),
        smtp_username=env.optional("SMTP_USERNAME"),
        smtp_password=env.optional("SMTP_PASSWORD"),
        smtp_from=env.str("SMTP_FROM", "iothub@localhost"),
        smtp_tls=env.str("SMTP_TLS", "none").lower(),
        smtp_timeout=smtp_timeout,
        webhook_timeout=webhook_timeout,
        max_attempts=env.int("NOTIFY_MAX_ATTEMPTS", 5),
        backoff_base=env.float("NOTIFY_BACKOFF_BASE", 2.0),
        backoff_cap=env.float("NOTIFY_BACKOFF_CAP", 300.0),
        workers=env.int("NOTIFY_WORKERS", 8),
        per_target_limit=env.int("NOTIFY_PER_TARGET_LIMIT", 2),
        poll_interval=env.float("NOTIFY_POLL_INTERVAL", 0.5),
        # A claimed attempt is re-run after the lease, so it must outlast the slowest delivery.
        lease_seconds=env.float("NOTIFY_LEASE_SECONDS", max(60.0, 4 * max(webhook_timeout, smtp_timeout))),
        batch_size=env.int("NOTIFY_BATCH_SIZE", 100),
        batch_wait=env.float("NOTIFY_BATCH_WAIT", 0.1),
    )
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    if s.smtp_tls not in SMTP_TLS_MODES:
        raise SettingsError(f"SMTP_TLS must be one of {', '.join(SMTP_TLS_MODES)}, got {s.smtp_tls!r}")
    if s.smtp_username and not s.smtp_password:
        raise SettingsError("SMTP_PASSWORD must be set when SMTP_USERNAME is")
    if s.max_attempts < 1 or s.workers < 1 or s.per_target_limit < 1:
        raise SettingsError("NOTIFY_MAX_ATTEMPTS, NOTIFY_WORKERS and NOTIFY_PER_TARGET_LIMIT must be >= 1")
    if s.backoff_base < 0 or s.backoff_cap < s.backoff_base:
        raise SettingsError("NOTIFY_BACKOFF_BASE must be >= 0 and <= NOTIFY_BACKOFF_CAP")
    if s.lease_seconds <= 2 * max(s.webhook_timeout, s.smtp_timeout):  # connect + read timeouts
        raise SettingsError("NOTIFY_LEASE_SECONDS must exceed twice WEBHOOK_TIMEOUT and SMTP_TIMEOUT")
