"""Every environment variable the collector reads, in one frozen object."""

from __future__ import annotations

from dataclasses import dataclass

from iothub import topology
from iothub.mqtt_tls import MqttAuth
from iothub.settings import (
    DEVELOPMENT,
    Env,
    host_ports,
    mqtt_fields,
    require_mqtt_secrets,
    require_secrets,
    require_tls,
    service_fields,
    store_fields,
    tls_fields,
)


@dataclass(frozen=True)
class Settings:
    """Collector configuration."""

    environment: str
    log_level: str
    database_url: str
    amqp_url: str
    metrics_port: int
    # MQTT bridge
    mqtt_host: str
    mqtt_port: int
    mqtt_auth: MqttAuth
    mqtt_client_id: str
    mqtt_topic_prefix: str
    mqtt_share_group: str | None
    mqtt_brokers: tuple[tuple[str, int], ...]  # every broker read; spec meters publish each message to all of theirs
    mqtt_keepalive: int
    max_payload_bytes: int
    publish_window: int  # AMQP messages awaiting their confirm before the next burst is bundled
    # HTTP ingest
    http_enabled: bool
    http_port: int
    http_require_token: bool
    http_threads: int  # requests served at once; each waits for its RabbitMQ confirm
    tls_mode: str  # on | upstream | off (iothub.settings.tls_fields)
    tls_cert_file: str | None
    tls_key_file: str | None
    # stages run by this process (python -m collector [stage ...] overrides): edge, sequencer, writers
    stages: tuple[str, ...]
    # sequencing
    ingest_partitions: int  # P: devices are spread over this many partition queues; the same on every stage
    rebalance_interval: float
    reboot_uptime_s: int
    device_cache_ttl: float
    # writers: which run, and their stores
    writers: tuple[str, ...]  # any of: series, archive, state, dead_letters, energy
    series_backends: tuple[str, ...]  # any of: postgres, influxdb
    series_retention_days: int
    influxdb_url: str | None
    influxdb_token: str | None
    influxdb_org: str
    influxdb_bucket: str
    archive_backend: str  # s3 | filesystem
    archive_dir: str
    archive_gzip: bool
    archive_window_s: int
    archive_retention_days: int  # archive index rows kept (0: forever); match the bucket's lifecycle rule
    s3_endpoint: str | None
    s3_access_key: str | None
    s3_secret_key: str | None
    s3_bucket: str
    s3_secure: bool
    writer_batch_size: int
    writer_batch_wait: float
    # metering (docs/metering.md)
    metering_derive: bool  # ingest adds derived power to each telemetry message it publishes
    metering_bucket_s: int  # energy bucket length; fixed once energy is stored (buckets are recomputed, not resized)
    metering_sample_interval_s: float  # the fleet's sampling interval
    metering_gap_factor: float  # never integrate across more than this many sampling intervals

    @property
    def metering_max_gap_s(self) -> float:
        """Longest stretch between two samples that is integrated."""
        return self.metering_sample_interval_s * self.metering_gap_factor


def load(env: Env | None = None) -> Settings:
    """Read the collector's settings from the environment (or the given Env)."""
    env = env or Env()
    mqtt = mqtt_fields(env, client_id="iothub-collector")
    brokers = env.optional("MQTT_BROKERS") or f"{mqtt['mqtt_host']}:{mqtt['mqtt_port']}"
    return Settings(
        **service_fields(env),
        **mqtt,
        mqtt_brokers=host_ports(brokers, mqtt["mqtt_port"], name="MQTT_BROKERS"),
        metrics_port=env.int("METRICS_PORT", 9110),
        mqtt_share_group=env.optional("MQTT_SHARE_GROUP"),
        max_payload_bytes=env.int("MAX_PAYLOAD_BYTES", 64 * 1024),
        publish_window=env.int("PUBLISH_WINDOW", 8),
        http_enabled=env.bool("HTTP_INGEST_ENABLED", True),
        http_port=env.int("HTTP_PORT", 8081),
        # Outside development a device proves itself on the HTTP ingest as it must on MQTT (docs/security.md).
        http_require_token=env.bool("HTTP_REQUIRE_DEVICE_TOKEN", env.environment != DEVELOPMENT),
        http_threads=env.int("HTTP_THREADS", 32),
        **tls_fields(env, required=False),  # checked by require_stage_secrets: only the edge serves HTTP
        stages=env.list("COLLECTOR_STAGES", "edge,sequencer,writers"),
        ingest_partitions=env.int("INGEST_PARTITIONS", topology.DEFAULT_PARTITIONS),
        rebalance_interval=env.float("SEQUENCER_REBALANCE_INTERVAL", 5.0),
        reboot_uptime_s=env.int("REBOOT_UPTIME_S", 120),
        device_cache_ttl=env.float("DEVICE_CACHE_TTL", 30.0),
        # WRITERS=none runs the ingest edge alone (an empty value means "unset" to Env, hence the word).
        writers=tuple(w for w in env.list("WRITERS", "series,archive,state,dead_letters,energy") if w != "none"),
        series_backends=env.list("SERIES_BACKENDS", "postgres"),
        series_retention_days=env.int("SERIES_RETENTION_DAYS", 90),
        **store_fields(env),
        archive_retention_days=env.int("ARCHIVE_RETENTION_DAYS", 0),
        writer_batch_size=env.int("WRITER_BATCH_SIZE", 500),
        writer_batch_wait=env.float("WRITER_BATCH_WAIT", 0.2),
        metering_derive=env.bool("METERING_DERIVE", True),
        metering_bucket_s=env.int("METERING_BUCKET_S", 300),
        metering_sample_interval_s=env.float("METERING_SAMPLE_INTERVAL_S", 1.0),
        metering_gap_factor=env.float("METERING_GAP_FACTOR", 3.0),
    )


def require_stage_secrets(settings: Settings) -> None:
    """Refuse to run a stage without what it needs (stages need only their own): the edge its broker account and
    HTTPS certificate, a writer its store's credentials (outside development)."""
    if "edge" in settings.stages:
        require_mqtt_secrets(settings)
        if settings.http_enabled:
            require_tls(settings.environment, {"tls_mode": settings.tls_mode, "tls_cert_file": settings.tls_cert_file,
                                               "tls_key_file": settings.tls_key_file})
    writers = settings.writers if "writers" in settings.stages else ()
    needed = {}
    if "archive" in writers and settings.archive_backend == "s3":
        needed |= {"S3_ACCESS_KEY": settings.s3_access_key, "S3_SECRET_KEY": settings.s3_secret_key}
    if "series" in writers and "influxdb" in settings.series_backends:
        needed["INFLUXDB_TOKEN"] = settings.influxdb_token
    require_secrets(settings.environment, needed)
