"""A real HTTP server standing in for operators' webhook endpoints."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.procs import free_port


@dataclass
class WebhookReceiver:
    """A real HTTP server recording every POST; answers with the queued status codes, then 200."""

    port: int
    requests: list[dict] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """Where subscriptions should point."""
        return f"http://127.0.0.1:{self.port}/hook"

    def verified(self, secret: str) -> list[dict]:
        """The requests whose signature header matches an HMAC-SHA256 of the body with `secret`."""
        with self.lock:
            return [r for r in self.requests if signature_ok(r["headers"], r["body"], secret)]


def signature_ok(headers: dict, body: bytes, secret: str) -> bool:
    """Check the notifier's X-IoTHub-Signature header (sha256=<hex>)."""
    sent = {k.lower(): v for k, v in headers.items()}.get("x-iothub-signature", "")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(sent, expected)


@contextmanager
def running_receiver() -> Iterator[WebhookReceiver]:
    """Serve a WebhookReceiver on a free port for the duration of the block."""
    receiver = WebhookReceiver(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield receiver
    finally:
        server.shutdown()
