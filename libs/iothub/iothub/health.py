"""The /metrics, /healthz and /readyz endpoints every worker service exposes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

Check = Callable[[], bool]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # scrapes every few seconds would drown the JSON logs
        pass


def make_app(checks: Mapping[str, Check], registry=REGISTRY):
    """WSGI app: /metrics (Prometheus), /healthz (alive), /readyz (every check passes)."""

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [generate_latest(registry)]
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"status":"ok"}']
        if path == "/readyz":
            results = {name: _safe(check) for name, check in checks.items()}
            ok = all(results.values())
            body = ",".join(f'"{k}":{"true" if v else "false"}' for k, v in results.items())
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [f'{{"ready":{"true" if ok else "false"},"checks":{{{body}}}}}'.encode()]
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"error":{"code":"not_found","message":"no such endpoint","details":{}}}']

    return app


def _safe(check: Check) -> bool:
    try:
        return bool(check())
    except Exception:  # a failing probe means "not ready", never a crashed endpoint
        return False


def serve(port: int, checks: Mapping[str, Check], host: str = "0.0.0.0") -> WSGIServer:
    """Start the endpoints on a daemon thread; port 0 picks a free one (see server.server_port)."""
    server = make_server(host, port, make_app(checks), server_class=_Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
