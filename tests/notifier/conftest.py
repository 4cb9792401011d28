"""Notifier fixtures: a recording webhook receiver, a real SMTP server, an in-process notifier, and publishers."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pika
import pytest
from aiosmtpd.controller import Controller

from iothub import topology
from iothub.settings import Env
from tests.support.poll import wait_for
from tests.support.procs import free_port

# Small delays and timeouts so retries, give-ups and leases happen within seconds.
FAST = {
    "IOTHUB_ENV": "development", "LOG_LEVEL": "WARNING", "WEBHOOK_TIMEOUT": "0.5", "SMTP_TIMEOUT": "2",
    "NOTIFY_MAX_ATTEMPTS": "3", "NOTIFY_BACKOFF_BASE": "0.05", "NOTIFY_BACKOFF_CAP": "0.2",
    "NOTIFY_WORKERS": "4", "NOTIFY_PER_TARGET_LIMIT": "2", "NOTIFY_POLL_INTERVAL": "0.05",
    "NOTIFY_LEASE_SECONDS": "5", "NOTIFY_BATCH_WAIT": "0.02",
}


@dataclass
class Request:
    """One request the receiver saw."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """A real HTTP server recording every POST; per path, `script` lists status codes to answer in turn (then 200)
    and `delays` slows answers down."""

    server: ThreadingHTTPServer
    requests: list[Request] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        """Absolute URL of a path on this receiver."""
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def at(self, path: str) -> list[Request]:
        """Requests received on one path."""
        with self.lock:
            return [r for r in self.requests if r.path == path]


def _handler(receiver_ref: list[Receiver]):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            receiver = receiver_ref[0]
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if receiver.delays.get(self.path):
                time.sleep(receiver.delays[self.path])  # a slow target, not test synchronisation
            with receiver.lock:
                receiver.requests.append(Request(self.path, dict(self.headers), body, time.time()))
                codes = receiver.script.get(self.path)
                code = codes.pop(0) if codes else 200
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture(scope="session")
def receiver():
    """A ThreadingHTTPServer on a free port, recording requests."""
    ref: list[Receiver] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ref))
    server.daemon_threads = True
    ref.append(Receiver(server))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield ref[0]
    server.shutdown()
    server.server_close()


class _Mailbox:
    def __init__(self):
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("nobody-"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture(scope="session")
def smtp_server():
    """A real aiosmtpd SMTP server on a free port; `.handler.messages` holds (from, rcpts, raw bytes)."""
    controller = Controller(_Mailbox(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture(scope="session")
def notifier_env(pg_dsn, amqp_url, smtp_server) -> dict[str, str]:
    """Environment pointing a notifier at this run's database, vhost and SMTP server."""
    return {**FAST, "DATABASE_URL": pg_dsn, "AMQP_URL": amqp_url, "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_server.port), "SMTP_FROM": "alerts@iothub.test"}


@pytest.fixture(scope="module")
def notifier(notifier_env):
    """An in-process notifier (consumer + scheduler) built by the same wiring as `python -m notifier`."""
    from notifier import settings
    from notifier.app import App

    app = App(settings.load(Env({**notifier_env, "METRICS_PORT": "0"}))).start()
    wait_for(app.ready, timeout=30, what="notifier ready")
    yield app
    app.stop()


@pytest.fixture
def publish(amqp_url):
    """publish(doc, message_id=None, body=None): a persistent, confirmed message on iot.events."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = conn.channel()
    topology.declare(channel)
    channel.confirm_delivery()

    def send(doc: dict | None, *, message_id: str | None = None, body: bytes | None = None) -> None:
        event = (doc or {}).get("event", {})
        key = topology.event_key(event.get("severity", "info"), event.get("rule_kind", "x"),
                                 event.get("rule_id") or "none")
        channel.basic_publish(topology.EVENTS_EXCHANGE, key, body if body is not None else json.dumps(doc).encode(),
                              pika.BasicProperties(delivery_mode=2, content_type="application/json",
                                                   message_id=message_id or (doc or {}).get("change_id")),
                              mandatory=True)

    yield send
    conn.close()
