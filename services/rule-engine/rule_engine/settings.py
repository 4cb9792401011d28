"""Every environment variable the rule engine reads, in one frozen object."""

from __future__ import annotations

from dataclasses import dataclass

from iothub import topology
from iothub.settings import Env, service_fields


@dataclass(frozen=True)
class Settings:
    """Rule engine configuration."""

    environment: str
    log_level: str
    database_url: str
    amqp_url: str
    metrics_port: int
    batch_size: int
    prefetch: int  # per partition (AMQP messages; a bundle counts once)
    ingest_partitions: int  # the sequencer's partitions, which the rule engine's mirror: must be the same number
    rebalance_interval: float  # how often a replica checks it holds no more than its share of partitions
    rules_min_reload_s: float  # debounce of iot.rules notices
    rules_max_age_s: float  # reload regardless after this long
    sweep_interval_s: float  # offline detection and command expiry, per partition (its ticks come this often)
    outbox_batch: int
    outbox_interval_s: float
    outbox_retention_h: float  # published outbox rows are deleted after this long
    db_pool_size: int
    persist_seen_s: float  # store a device's last-seen at least this often even when nothing else changed
    offline_max_lag_s: float  # no offline detection while the input queue lags more than this
    config_refresh_s: float  # re-read every device's applied intervals (offline limits) this often


def load(env: Env | None = None) -> Settings:
    """Read the rule engine's settings from the environment (or the given Env)."""
    env = env or Env()
    return Settings(
        **service_fields(env),
        metrics_port=env.int("METRICS_PORT", 9120),
        batch_size=env.int("RULE_BATCH_SIZE", 500),
        prefetch=env.int("RULE_PREFETCH", 64),
        ingest_partitions=env.int("INGEST_PARTITIONS", topology.DEFAULT_PARTITIONS),
        rebalance_interval=env.float("RULE_REBALANCE_INTERVAL", 5.0),
        rules_min_reload_s=env.float("RULES_MIN_RELOAD_S", 2.0),
        rules_max_age_s=env.float("RULES_MAX_AGE_S", 30.0),
        sweep_interval_s=env.float("SWEEP_INTERVAL_S", 1.0),
        outbox_batch=env.int("OUTBOX_BATCH", 500),
        outbox_interval_s=env.float("OUTBOX_INTERVAL_S", 1.0),
        outbox_retention_h=env.float("OUTBOX_RETENTION_H", 168.0),
        db_pool_size=env.int("DB_POOL_SIZE", 4),
        persist_seen_s=env.float("PERSIST_SEEN_S", 30.0),
        offline_max_lag_s=env.float("OFFLINE_MAX_LAG_S", 30.0),
        config_refresh_s=env.float("DEVICE_CONFIG_REFRESH_S", 30.0),
    )
