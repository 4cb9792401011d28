"""The reconnect loop every RabbitMQ session shares: run, and after a lost connection back off and run again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pika
from pika.exceptions import AMQPError

log = logging.getLogger(__name__)


def keep_running(session: Callable[[], None], stop: threading.Event, *, what: str,
                 on_lost: Callable[[], None] = lambda: None, errors: tuple[type[BaseException], ...] = (),
                 max_backoff: float = 15.0) -> None:
    """Call `session` until `stop` is set; AMQP/socket errors (and `errors`) are logged and retried with backoff."""
    backoff = 0.5
    while not stop.is_set():
        try:
            session()
            backoff = 0.5
        except (AMQPError, OSError, *errors) as exc:
            log.warning("connection lost", extra={"session": what, "error": str(exc)})
        on_lost()
        if stop.wait(backoff):
            break
        backoff = min(backoff * 2, max_backoff)


def parameters(url: str, name: str) -> pika.URLParameters:
    """Connection parameters that name the connection, so the management UI shows who holds it."""
    params = pika.URLParameters(url)
    params.client_properties = {"connection_name": name}
    return params
