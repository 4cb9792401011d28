"""Composition of the writers: one BatchConsumer thread per enabled writer, plus series retention."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from collector.settings import Settings
from collector.writers.archive import ArchiveWriter, ObjectStore
from collector.writers.archive_postgres import PostgresArchiveIndex
from collector.writers.dead_letters import DeadLetterRecorder
from collector.writers.dead_letters_postgres import PostgresDeadLetterStore
from collector.writers.series import SeriesStore, SeriesWriter
from collector.writers.series_postgres import PostgresSeriesStore
from collector.writers.state import StateWriter
from collector.writers.state_postgres import PostgresStateStore
from iothub import topology
from iothub.db import Database
from iothub.errors import Unavailable
from iothub.rabbit import BatchConsumer, ConsumerConfig
from iothub.rabbit.consumer import BatchHandler
from iothub.settings import SettingsError

log = logging.getLogger(__name__)
WRITERS = ("series", "archive", "state", "dead_letters", "energy")
QUEUES = {"series": topology.SERIES_QUEUE.name, "archive": topology.ARCHIVE_QUEUE.name,
          "state": topology.STATE_QUEUE.name, "dead_letters": topology.DEAD_LETTER_QUEUE.name,
          "energy": topology.ENERGY_QUEUE.name}  # energy: metering (issue 13)
RETENTION_INTERVAL = 3600.0
RETENTION_RETRY = 60.0


@dataclass
class WriterHandle:
    """A running writer: its consumer thread and helpers; stop() then join()."""

    name: str
    consumer: BatchConsumer
    thread: threading.Thread
    helpers: list[threading.Thread] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        """Finish the current batch and stop consuming."""
        self.stopping.set()
        self.consumer.stop()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the threads to end."""
        self.thread.join(timeout)
        for helper in self.helpers:
            helper.join(timeout)

    def ready(self) -> bool:
        """True while the consumer is connected to RabbitMQ."""
        return self.consumer.connected.is_set()


def build_object_store(settings: Settings) -> ObjectStore:
    """The archive's backend from settings."""
    if settings.archive_backend == "filesystem":
        from collector.writers.store_fs import FilesystemObjectStore

        return FilesystemObjectStore(settings.archive_dir)
    if settings.archive_backend == "s3":
        if not settings.s3_endpoint:
            raise SettingsError("S3_ENDPOINT must be set when ARCHIVE_BACKEND is s3")
        from collector.writers.store_s3 import S3ObjectStore

        return S3ObjectStore(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                             settings.s3_bucket, secure=settings.s3_secure)
    raise SettingsError(f"ARCHIVE_BACKEND must be s3 or filesystem, got {settings.archive_backend!r}")


def build_series_stores(settings: Settings, db: Database) -> list[SeriesStore]:
    """The enabled series backends from settings."""
    stores: list[SeriesStore] = []
    for backend in settings.series_backends:
        if backend == "postgres":
            stores.append(PostgresSeriesStore(db, retention_days=settings.series_retention_days))
        elif backend == "influxdb":
            if not settings.influxdb_url:
                raise SettingsError("INFLUXDB_URL must be set when SERIES_BACKENDS includes influxdb")
            from collector.writers.series_influx import InfluxSeriesStore

            stores.append(InfluxSeriesStore(settings.influxdb_url, settings.influxdb_token,
                                            settings.influxdb_org, settings.influxdb_bucket))
        else:
            raise SettingsError(f"unknown series backend {backend!r} (postgres, influxdb)")
    return stores


def build_handler(name: str, settings: Settings, db: Database) -> tuple[BatchHandler, list]:
    """The batch handler of one writer and the stores it uses."""
    if name == "series":
        stores = build_series_stores(settings, db)
        return SeriesWriter(stores), stores
    if name == "archive":
        if settings.archive_window_s <= 0 or 3600 % settings.archive_window_s:
            # A window crossing an hour would sit in the wrong hour= partition of the Hive layout.
            raise SettingsError(f"ARCHIVE_WINDOW_S must divide 3600, got {settings.archive_window_s}")
        store = build_object_store(settings)
        index = PostgresArchiveIndex(db, retention_days=settings.archive_retention_days)
        writer = ArchiveWriter(store, index, window_s=settings.archive_window_s, gzip_=settings.archive_gzip)
        return writer, [store]
    if name == "state":
        return StateWriter(PostgresStateStore(db)), []
    if name == "dead_letters":
        return DeadLetterRecorder(PostgresDeadLetterStore(db)), []
    if name == "energy":  # metering (issue 13)
        from collector.writers.energy_build import build_energy_writer

        return build_energy_writer(settings, db), []
    raise SettingsError(f"unknown writer {name!r} ({', '.join(WRITERS)})")


def run_retention(store: PostgresSeriesStore, stopping: threading.Event,
                  interval: float = RETENTION_INTERVAL) -> None:
    """Drop expired partitions at start and then every interval until stopped."""
    wait = 0.0
    while not stopping.wait(wait):
        try:
            store.apply_retention()
            wait = interval
        except Unavailable as exc:
            log.warning("series retention postponed", extra={"error": str(exc)})
            wait = min(RETENTION_RETRY, interval)
        except Exception:  # a retention bug must not stop the writer; try again later
            log.exception("series retention failed")
            wait = interval


def _launch(name: str, settings: Settings, handler: BatchHandler, stores: list) -> WriterHandle:
    config = ConsumerConfig(QUEUES[name], batch_size=settings.writer_batch_size,
                            batch_wait=settings.writer_batch_wait, prefetch=max(1000, 2 * settings.writer_batch_size))
    consumer = BatchConsumer(settings.amqp_url, config, handler, name=f"collector-writer-{name}")
    thread = threading.Thread(target=consumer.run, name=f"writer-{name}", daemon=True)
    handle = WriterHandle(name, consumer, thread)
    for store in stores:
        if isinstance(store, PostgresSeriesStore):
            handle.helpers.append(threading.Thread(target=run_retention, args=(store, handle.stopping),
                                                   name="series-retention", daemon=True))
    thread.start()
    for helper in handle.helpers:
        helper.start()
    log.info("writer started", extra={"writer": name, "queue": config.queue})
    return handle


def start_writer(name: str, settings: Settings, db: Database) -> WriterHandle:
    """Start one writer's consumer thread (and retention for the PostgreSQL series store)."""
    handler, stores = build_handler(name, settings, db)
    return _launch(name, settings, handler, stores)


def start_writers(settings: Settings, db: Database, stop_event: threading.Event | None = None) -> list[WriterHandle]:
    """Start every writer named in settings.writers; setting stop_event stops them all."""
    # Build every writer before starting any, so a configuration error starts nothing.
    built = [(name, *build_handler(name, settings, db)) for name in dict.fromkeys(settings.writers)]
    handles = [_launch(name, settings, handler, stores) for name, handler, stores in built]
    if stop_event is not None and handles:
        def stop_all() -> None:
            stop_event.wait()
            for handle in handles:
                handle.stop()

        threading.Thread(target=stop_all, name="writers-stop", daemon=True).start()
    return handles
