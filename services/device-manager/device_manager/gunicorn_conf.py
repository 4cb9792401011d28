"""gunicorn settings: `gunicorn -c python:device_manager.gunicorn_conf "device_manager:create_app()"` (installed with
the package, so the image needs no file of its own; WEB_CONCURRENCY sets workers).

HTTPS comes from the service's settings (TLS_MODE, TLS_CERT_FILE, TLS_KEY_FILE): with TLS_MODE=on gunicorn serves
TLS 1.2+ itself; upstream (an ingress terminates TLS) and off (development only) serve plain HTTP.
"""

import os

from device_manager.settings import load
from iothub import tls
from iothub.settings import load_or_exit

_settings = load_or_exit("device-manager", load)  # refuses to start here, before any worker, on a missing secret

bind = "0.0.0.0:8080"
timeout = 30
graceful_timeout = 20
accesslog = None  # the app logs one JSON line per request itself
if _settings.tls_mode == "on":
    certfile = _settings.tls_cert_file
    keyfile = _settings.tls_key_file


_contexts = []  # one per process: sync workers ask for a context on every connection


def ssl_context(_conf, _default_factory):
    """The project's one server context (TLS 1.2 at least); a reload (SIGHUP) re-reads renewed certificates."""
    if not _contexts:
        _contexts.append(tls.server_context(_settings.tls_cert_file, _settings.tls_key_file))
    return _contexts[0]


def child_exit(_server, worker):
    """Drop a dead worker's live gauges when metrics run in prometheus_client multiprocess mode."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")  # gunicorn's own hook, outside the service's settings
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, path)
