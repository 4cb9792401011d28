"""The whole platform as real processes: collector, rule-engine and notifier against the run's servers."""

from __future__ import annotations

import pytest

from tests.support import mqtt as test_mqtt
from tests.support.services import running_platform


@pytest.fixture
def platform_env(pg_dsn, amqp_url, mqtt_broker, s3_server, uid):
    """Environment every service process gets."""
    return {
        "IOTHUB_ENV": "development", "DATABASE_URL": pg_dsn, "AMQP_URL": amqp_url,
        "MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(mqtt_broker.port),
        **test_mqtt.env(), "MQTT_CLIENT_ID": f"collector-{uid}",
        "HTTP_INGEST_ENABLED": "false", "SERIES_BACKENDS": "postgres", "ARCHIVE_BACKEND": "s3",
        "S3_ENDPOINT": f"127.0.0.1:{s3_server.port}", "S3_ACCESS_KEY": "test", "S3_SECRET_KEY": "testtest",
        "S3_BUCKET": f"e2e-{uid}", "ARCHIVE_WINDOW_S": "60", "WRITER_BATCH_WAIT": "0.05",
        "RULES_MIN_RELOAD_S": "0.2", "NOTIFY_BACKOFF_BASE": "0.05", "NOTIFY_BACKOFF_CAP": "0.5",
        "NOTIFY_POLL_INTERVAL": "0.1", "WEBHOOK_TIMEOUT": "2",
    }


@pytest.fixture
def platform(platform_env, tmp_path, amqp_url):
    """Start collector, rule-engine and notifier; stop them after the test."""
    from tests.support.queues import purge_all

    purge_all(amqp_url)  # queues are shared within the run's vhost; start from empty ones
    with running_platform(platform_env, tmp_path) as started:
        yield started
