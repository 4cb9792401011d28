"""gunicorn defaults for `gunicorn "device_manager:create_app()"` run here (WEB_CONCURRENCY sets workers)."""

import os

bind = "0.0.0.0:8080"
timeout = 30
graceful_timeout = 20
accesslog = None  # the app logs one JSON line per request itself


def child_exit(_server, worker):
    """Drop a dead worker's live gauges when metrics run in prometheus_client multiprocess mode."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")  # gunicorn's own hook, outside the service's settings
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, path)
