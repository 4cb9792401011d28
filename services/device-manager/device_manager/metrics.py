"""Prometheus metrics of the REST API (prefix iothub_api_) and the per-request hooks that feed them."""

from __future__ import annotations

import logging
import time

from flask import Flask, g, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

REQUESTS = Counter("iothub_api_requests_total", "HTTP requests", ["route", "method", "status"])
LATENCY = Histogram("iothub_api_request_duration_seconds", "HTTP request latency", ["route", "method"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
# livesum: with PROMETHEUS_MULTIPROC_DIR (several gunicorn workers) the scrape shows the sum over live workers.
DB_POOL_IN_USE = Gauge("iothub_api_db_pool_in_use", "Database connections checked out", multiprocess_mode="livesum")
DB_POOL_SIZE = Gauge("iothub_api_db_pool_size", "Largest number of database connections",
                     multiprocess_mode="livesum")
COMMANDS_PUBLISHED = Counter("iothub_api_commands_published_total", "Commands published over MQTT", ["result"])

access_log = logging.getLogger("device_manager.access")


def exposition(multiproc_dir: str | None) -> bytes:
    """The scrape body: this process's registry, or every worker's when running in multiprocess mode."""
    if not multiproc_dir:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
    return generate_latest(registry)


def _route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def install(app: Flask) -> None:
    """Time every request, count it by route template, method and status, and log it once as JSON."""

    @app.before_request
    def _start():
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response):
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = _route()
        REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        LATENCY.labels(route, request.method).observe(elapsed)
        access_log.info("request", extra={
            "method": request.method, "path": request.path, "route": route, "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 2), "remote_addr": request.remote_addr,
            # A streamed body (archive download, export) has no length yet: asking would buffer all of it first.
            "bytes": None if response.is_streamed else response.calculate_content_length()})
        return response
