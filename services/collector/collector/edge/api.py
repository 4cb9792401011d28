"""HTTP ingest: POST /api/v1/telemetry with the protocol v2 envelope, answered after the RabbitMQ confirm.

Served by cheroot (CherryPy's production WSGI server): a bounded thread pool that runs inside the edge process
beside the MQTT bridges, with TLS from the standard ssl module; gunicorn would fork workers of its own, and
waitress speaks no TLS.
"""

from __future__ import annotations

import threading

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from flask import Flask, jsonify, request

from collector.edge.service import ACCEPTED, REJECTED, Ingest, Outcome
from iothub import tls
from iothub.contract import Reason
from iothub.errors import Unavailable

CONFIRM_TIMEOUT = 10.0
# An oversized body up to this size is read and dropped before the 413: the server closes the connection after a
# 413, and a client still sending would see a reset (a TLS EOF) instead of the answer. Larger ones are not read.
DRAIN_LIMIT = 1024 * 1024
_STATUS = {Reason.TOO_LARGE: 413, Reason.UNAUTHORIZED: 401}


def _error(status: int, code: str, message: str, **details):
    response = jsonify({"error": {"code": code, "message": message, "details": details}})
    response.status_code = status
    return response


def create_app(ingest: Ingest, *, max_bytes: int, require_token: bool) -> Flask:
    """The ingest app; every request goes through the same Ingest as MQTT messages."""
    app = Flask("collector")

    @app.post("/api/v1/telemetry")
    def post_telemetry():
        if request.mimetype != "application/json":
            return _error(415, "unsupported_media_type", "Content-Type must be application/json")
        length = request.content_length
        if length is not None and length > max_bytes:
            # Parked empty (parking a body we refuse would defeat the limit); only drained, see DRAIN_LIMIT.
            ingest.reject(b"", Reason.TOO_LARGE, f"payload is {length} bytes, limit {max_bytes}",
                          source="http", routing_key=request.path, done=lambda outcome: None)
            if length <= DRAIN_LIMIT:
                _drain(request.stream)
            return _error(413, "payload_too_large", f"body exceeds {max_bytes} bytes", reason=Reason.TOO_LARGE.value)
        raw = request.stream.read(max_bytes + 1)
        if len(raw) > max_bytes:  # a body without Content-Length that runs over: Ingest refuses it
            _drain(request.stream)
        token = _bearer(request.headers.get("Authorization", ""))
        finished = threading.Event()
        result: list[Outcome] = []

        def done(outcome: Outcome) -> None:
            result.append(outcome)
            finished.set()

        try:
            ingest.handle(raw, source="http", done=done, routing_key=request.path, token=token,
                          require_token=require_token)
        except Unavailable:
            return _error(503, "unavailable", "the database is unavailable, retry later")
        if not finished.wait(CONFIRM_TIMEOUT):
            return _error(503, "unavailable", "the message broker did not confirm in time")
        return _respond(result[0])

    @app.errorhandler(405)
    def method_not_allowed(_exc):
        return _error(405, "method_not_allowed", "use POST")

    @app.errorhandler(404)
    def not_found(_exc):
        return _error(404, "not_found", "no such endpoint")

    return app


def _drain(stream) -> None:
    """Read and drop the rest of the body, at most DRAIN_LIMIT bytes."""
    left = DRAIN_LIMIT
    while left > 0 and (chunk := stream.read(min(64 * 1024, left))):
        left -= len(chunk)


def _bearer(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _respond(outcome: Outcome):
    if outcome.kind == ACCEPTED:
        # Durably queued for its partition's sequencer, which alone can tell a duplicate (docs/protocol.md).
        return jsonify({"status": "accepted"}), 202
    if outcome.kind == REJECTED and outcome.reason is not None:
        code = _STATUS.get(outcome.reason, 400)
        names = {413: "payload_too_large", 401: "unauthorized", 400: "invalid_message"}
        return _error(code, names[code], outcome.detail or outcome.reason.value, reason=outcome.reason.value)
    return _error(503, "unavailable", "the message broker is unavailable, retry later")


class HttpIngest:
    """Serves the app in the collector process (start/stop): HTTPS when given a certificate and key."""

    def __init__(self, app: Flask, port: int, host: str = "0.0.0.0", *, threads: int = 32,
                 cert_file: str | None = None, key_file: str | None = None):
        # Each thread holds its request until the RabbitMQ confirm, so `threads` bounds the requests in flight.
        self._server = wsgi.Server((host, port), app, numthreads=threads, server_name="iothub-collector")
        if cert_file and key_file:
            adapter = BuiltinSSLAdapter(cert_file, key_file)
            adapter.context = tls.server_context(cert_file, key_file)  # TLS 1.2 at least, like every listener
            self._server.ssl_adapter = adapter
        self._server.prepare()  # binds now: a busy port fails here, and port 0 is resolved
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return self._server.bind_addr[1]

    def start(self) -> HttpIngest:
        """Serve on a daemon thread."""
        self._thread = threading.Thread(target=self._server.serve, name="http-ingest", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting requests; requests in flight finish first."""
        self._server.stop()
