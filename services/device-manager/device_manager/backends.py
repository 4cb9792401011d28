"""Per-app adapters for the operations endpoints, built on first use (after gunicorn forks its workers).

The series reader, the archive reader and the RabbitMQ publisher (rule-change notices, dead-letter replay).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

import orjson
from flask import current_app

from device_manager.archive.keys import ArchiveReader
from device_manager.extensions import get_db, get_settings
from device_manager.telemetry import SeriesReader
from iothub import topology
from iothub.errors import Unavailable

log = logging.getLogger("device_manager.backends")
_LOCK = threading.Lock()
_KEY = "device_manager_ops"
PUBLISH_TIMEOUT_S = 5.0  # broker confirm
START_TIMEOUT_S = 3.0  # first channel, once per worker
READY_WAIT_S = 1.0  # a reconnecting publisher, per request


def _cache() -> dict[str, Any]:
    return current_app.extensions.setdefault(_KEY, {})


def _get(name: str, build):
    cache = _cache()
    if name not in cache:
        with _LOCK:
            if name not in cache:
                cache[name] = build()
    return cache[name]


def get_series() -> SeriesReader:
    """The configured series backend (SERIES_BACKEND postgres | influxdb)."""
    return _get("series", _build_series)


def get_archive() -> ArchiveReader:
    """The configured archive backend (ARCHIVE_BACKEND s3 | filesystem)."""
    return _get("archive", _build_archive)


def _build_series() -> SeriesReader:
    s = get_settings()
    if s.series_backend == "influxdb":
        if not s.influxdb_url:
            raise Unavailable("SERIES_BACKEND is influxdb but INFLUXDB_URL is not set")
        from device_manager.telemetry.influx import InfluxSeries

        return InfluxSeries.connect(s.influxdb_url, s.influxdb_token, s.influxdb_org, s.influxdb_bucket)
    from device_manager.telemetry.postgres import PostgresSeries

    return PostgresSeries(get_db())


def _build_archive() -> ArchiveReader:
    s = get_settings()
    window = timedelta(seconds=s.archive_window_s)
    if s.archive_backend == "filesystem":
        from device_manager.archive.filesystem import FilesystemArchive

        return FilesystemArchive(s.archive_dir, window=window)
    if not s.s3_endpoint:
        raise Unavailable("ARCHIVE_BACKEND is s3 but S3_ENDPOINT is not set")
    from device_manager.archive.s3 import S3Archive

    return S3Archive.connect(s.s3_endpoint, s.s3_access_key, s.s3_secret_key, s.s3_bucket, secure=s.s3_secure,
                             window=window)


def _publisher():
    def build():
        from iothub.rabbit import ConfirmPublisher

        publisher = ConfirmPublisher(get_settings().amqp_url, name="device-manager")
        try:
            publisher.start(timeout=START_TIMEOUT_S)
        except Unavailable as exc:  # its I/O thread keeps reconnecting with backoff; keep the one instance
            log.warning("RabbitMQ publisher not ready", extra={"error": str(exc)})
        return publisher

    return _get("amqp", build)


def publish(exchange: str, routing_key: str, body: bytes, *, message_id: str | None = None,
            headers: dict | None = None, content_type: str = "application/json") -> None:
    """Publish and wait for the broker's confirm; raises Unavailable when RabbitMQ does not take it."""
    publisher = _publisher()
    if not publisher.wait_ready(READY_WAIT_S):
        raise Unavailable("RabbitMQ: no open channel")
    ok = publisher.publish_wait(exchange, routing_key, body, timeout=PUBLISH_TIMEOUT_S, message_id=message_id,
                                headers=headers, content_type=content_type)
    if not ok:
        raise Unavailable("RabbitMQ did not confirm the message")


def notify_rules_changed(rule_id: str, change: str) -> bool:
    """Tell rule engines to reload (fanout iot.rules); the change is committed already, so failure only logs:
    the rule engine also reloads every 30 s."""
    body = orjson.dumps({"rule_id": str(rule_id), "change": change})
    try:
        publish(topology.RULES_EXCHANGE, "", body)
        return True
    except Unavailable as exc:
        log.warning("rule change notice not published", extra={"rule_id": str(rule_id), "error": str(exc)})
        return False


def close(app) -> None:
    """Stop what was started for this app (tests build many apps)."""
    cache = app.extensions.get(_KEY, {})
    publisher = cache.pop("amqp", None)
    if publisher is not None:
        publisher.stop()
