"""Wiring of the ingest edge (publisher, directory, sequence state, MQTT bridge, HTTP ingest) with start/stop."""

from __future__ import annotations

import logging
import threading

from collector import metrics
from collector.api import HttpIngest, create_app
from collector.directory import DeviceDirectory
from collector.metering import power
from collector.mqtt import MqttBridge
from collector.repository import PostgresDevices, PostgresSeqStore
from collector.service import Ingest
from collector.settings import Settings
from iothub.db import Database
from iothub.errors import Unavailable
from iothub.rabbit import ConfirmPublisher

log = logging.getLogger(__name__)


class SeqFlusher:
    """Writes changed sequence state every interval, and once more on stop."""

    def __init__(self, ingest: Ingest, interval: float):
        self._ingest = ingest
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="seq-flusher", daemon=True)

    def start(self) -> SeqFlusher:
        """Flush on a daemon thread."""
        self._thread.start()
        return self

    def flush(self) -> int:
        """One flush; database outages are logged and retried next time."""
        try:
            written = self._ingest.flush()
        except Unavailable as exc:
            log.warning("sequence state flush failed", extra={"error": str(exc)})
            return 0
        metrics.SEQ_FLUSHES.inc(written)
        return written

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def stop(self) -> None:
        """Stop the loop and flush what is left."""
        self._stop.set()
        self._thread.join(10)
        self.flush()


def session_id(settings: Settings, host: str, port: int) -> str:
    """The MQTT client id of the persistent session on one broker: MQTT_CLIENT_ID itself on the first broker (so
    adding brokers keeps the session it had), MQTT_CLIENT_ID-host-port on the others."""
    if (host, port) == settings.mqtt_brokers[0]:
        return settings.mqtt_client_id
    return f"{settings.mqtt_client_id}-{host}-{port}".replace(":", "_")


class IngestEdge:
    """Everything between devices and the telemetry exchange, runnable in-process (tests) or from __main__."""

    def __init__(self, settings: Settings, db: Database):
        self.settings = settings
        self.db = db
        self.publisher = ConfirmPublisher(settings.amqp_url, name="collector-ingest",
                                          on_state=lambda ready: metrics.PUBLISHER_READY.set(int(ready)),
                                          max_unconfirmed=settings.publish_window)
        self.directory = DeviceDirectory(PostgresDevices(db), ttl=settings.device_cache_ttl)
        self.ingest = Ingest(self.publisher, self.directory, PostgresSeqStore(db), metrics.PrometheusObserver(),
                             max_bytes=settings.max_payload_bytes, reboot_uptime_s=settings.reboot_uptime_s,
                             prefix=settings.mqtt_topic_prefix,
                             derive=power.derive if settings.metering_derive else None)  # metering (issue 13)
        self.flusher = SeqFlusher(self.ingest, settings.seq_flush_interval)
        # One bridge per broker, all on the publisher's I/O loop and one sequence tracker: a spec meter's copy of a
        # message through its second broker is then a duplicate of the first (REQ-BROKER-001, REQ-DEDUP-001).
        self.bridges = [MqttBridge(self.ingest, host=host, port=port, client_id=session_id(settings, host, port),
                                   loop=lambda: self.publisher.ioloop, username=settings.mqtt_username,
                                   password=settings.mqtt_password, prefix=settings.mqtt_topic_prefix,
                                   share_group=settings.mqtt_share_group, keepalive=settings.mqtt_keepalive)
                        for host, port in settings.mqtt_brokers]
        self.bridge = self.bridges[0]
        metrics.PENDING_ACKS.set_function(lambda: sum(b.pending_acks for b in self.bridges))  # read at scrape time
        self.http: HttpIngest | None = None
        if settings.http_enabled:
            app = create_app(self.ingest, max_bytes=settings.max_payload_bytes,
                             require_token=settings.http_require_token)
            self.http = HttpIngest(app, settings.http_port)

    def start(self, timeout: float = 15.0) -> IngestEdge:
        """Connect to RabbitMQ, load devices, then open MQTT and HTTP."""
        self.publisher.start(timeout)
        self.directory.start()
        self.flusher.start()
        for bridge in self.bridges:
            bridge.start()
        if self.http is not None:
            self.http.start()
        return self

    def checks(self) -> dict:
        """Readiness probes for iothub.health.serve."""
        # Ready while any broker is read: a meter publishes to all of its brokers, so one carries its data.
        return {"mqtt": lambda: any(b.connected for b in self.bridges), "rabbitmq": lambda: self.publisher.ready,
                "database": self.db.ping}

    def stop(self) -> None:
        """Stop intake, let in-flight publishes settle, persist sequence state, close RabbitMQ."""
        if self.http is not None:
            self.http.stop()
        for bridge in self.bridges:
            bridge.stop()
        self.directory.stop()
        self.flusher.stop()
        self.publisher.stop()
