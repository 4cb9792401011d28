"""MQTT -> RabbitMQ bridge: persistent QoS 1 session, PUBACK only after the RabbitMQ confirm."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pika.adapters.select_connection import IOLoop

from collector import metrics
from collector.edge.mqtt_loop import LoopConnection
from collector.edge.mqtt_socket import BufferedClient
from collector.edge.service import FAILED, Ingest, Outcome
from iothub.contract import Reason
from iothub.contract.topics import parse_device_topic, subscriptions
from iothub.errors import Unavailable
from iothub.mqtt_tls import MqttAuth

log = logging.getLogger(__name__)


class MqttBridge:
    """Subscribes to the device topics and feeds every message through the shared ingest path.

    paho runs on the RabbitMQ publisher's I/O loop (collector.mqtt_loop). A supervisor thread connects, hands the
    socket to the loop, and reconnects with backoff when the connection or the loop ends.
    """

    def __init__(self, ingest: Ingest, *, host: str, port: int, client_id: str, loop: Callable[[], IOLoop | None],
                 auth: MqttAuth | None = None, prefix: str = "",
                 share_group: str | None = None, keepalive: int = 30):
        self._ingest = ingest
        self._host, self._port, self._keepalive = host, port, keepalive
        self._client_id = client_id
        self._auth = auth or MqttAuth()
        self._prefix = prefix
        self._filters = subscriptions(prefix, share_group)
        self._loop = loop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: LoopConnection | None = None
        self._connected = threading.Event()
        self._gauge = metrics.MQTT_CONNECTED.labels(f"{host}:{port}")

    @property
    def connected(self) -> bool:
        """True while subscribed on a live session."""
        return self._connected.is_set()

    @property
    def pending_acks(self) -> int:
        """Messages of the current connection waiting for their ack."""
        conn = self._conn
        return conn.pending if conn else 0

    def start(self) -> MqttBridge:
        """Run the connection supervisor on a daemon thread."""
        self._gauge.set(0)
        self._thread = threading.Thread(target=self._supervise, name=f"mqtt-bridge-{self._port}", daemon=True)
        self._thread.start()
        return self

    def wait_connected(self, timeout: float) -> bool:
        """Block until subscribed or the timeout passes."""
        return self._connected.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect; unacked messages stay in the broker's session for the next start."""
        self._stop.set()
        conn = self._conn
        if conn is not None:
            conn.broken.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _supervise(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            # Reconnecting before RabbitMQ is back would only fail the redelivered messages again.
            loop = self._loop()
            if loop is None:
                self._stop.wait(0.2)
                continue
            conn = LoopConnection(self._make_client())
            try:
                conn.client.connect(self._host, self._port, self._keepalive)
            except OSError as exc:
                log.warning("mqtt connect failed", extra={"error": str(exc)})
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            self._conn = conn
            began = time.monotonic()
            try:
                loop.add_callback_threadsafe(lambda c=conn, lp=loop: self._attach(c, lp))
            except Exception:  # the loop closed in between: start over on the next one
                conn.broken.set()
            while not conn.broken.wait(0.2):
                if self._loop() is not loop:  # RabbitMQ went away, and with it the loop paho runs on
                    conn.broken.set()
            self._connected.clear()
            self._gauge.set(0)
            conn.close()
            conn.release(loop, self._loop)
            if not self._stop.is_set():
                # A message RabbitMQ keeps refusing would otherwise spin connect/redeliver/nack.
                backoff = 0.5 if time.monotonic() - began > 30 else min(backoff * 2, 10.0)
                log.warning("mqtt connection ended; reconnecting", extra={"retry_in": backoff})
                self._stop.wait(backoff)

    def _make_client(self) -> mqtt.Client:
        # MQTT 3.1.1 + clean_session=False: the session (subscriptions, unacked messages) outlives us.
        client = BufferedClient(CallbackAPIVersion.VERSION2, client_id=self._client_id, clean_session=False,
                                protocol=mqtt.MQTTv311, reconnect_on_failure=False, manual_ack=True)
        self._auth.apply(client)
        client.max_inflight_messages_set(1000)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _attach(self, conn: LoopConnection, loop: IOLoop) -> None:
        if self._loop() is not loop:  # the publisher moved on to a new loop meanwhile
            conn.broken.set()
        else:
            conn.attach(loop)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("mqtt connection refused", extra={"error": str(reason_code)})
            if self._conn is not None:
                self._conn.broken.set()
            return
        log.info("mqtt connected", extra={"session_present": flags.session_present})
        if flags.session_present:
            # A kept session keeps its subscriptions; subscribing again would resend every retained status.
            self._mark_connected()
        else:
            client.subscribe([(f, 1) for f in self._filters])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(code.is_failure for code in reason_codes):
            log.error("mqtt subscription refused", extra={"error": [str(c) for c in reason_codes]})
            return
        self._mark_connected()

    def _mark_connected(self) -> None:
        self._connected.set()
        self._gauge.set(1)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        conn = self._conn
        if conn is not None and conn.client is client:
            conn.broken.set()

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        received = time.monotonic()
        conn = self._conn
        if conn is None or conn.client is not client:
            return
        entry = conn.add(msg.mid, msg.qos) if msg.qos > 0 else None

        def done(outcome: Outcome) -> None:
            if entry is not None:
                conn.settle(entry, outcome.kind != FAILED)

        try:
            parsed = parse_device_topic(msg.topic, self._prefix)
            if parsed is None:
                self._ingest.reject(msg.payload, Reason.UNKNOWN_TOPIC, f"not a device topic: {msg.topic[:200]}",
                                    source="mqtt", routing_key=msg.topic, done=done)
                return
            self._ingest.handle(msg.payload, source="mqtt", done=done, topic_device_id=parsed[0],
                                expected_type=parsed[1], routing_key=msg.topic, received=received,
                                redelivered=bool(msg.dup))
        except Unavailable as exc:
            log.warning("ingest dependency down; withholding acks", extra={"error": str(exc)})
            done(Outcome(FAILED))
        except Exception as exc:  # a bug on one message must not stall the stream: park it instead
            log.exception("unexpected error handling an mqtt message", extra={"topic": msg.topic[:200]})
            self._ingest.dead_letter(msg.payload, Reason.BAD_VALUE, f"internal error: {exc!r}"[:300],
                                     source="mqtt", routing_key=msg.topic, done=done)
