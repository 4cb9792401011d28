"""Wiring of the edge stage (publisher, directory, MQTT bridges, HTTP ingest) with start/stop."""

from __future__ import annotations

from collector import metrics
from collector.edge.api import HttpIngest, create_app
from collector.edge.directory import DeviceDirectory
from collector.edge.mqtt import MqttBridge
from collector.edge.repository import PostgresDevices
from collector.edge.service import Ingest
from collector.settings import Settings
from iothub import topology
from iothub.db import Database
from iothub.rabbit import ConfirmPublisher
from iothub.rabbit.partition_report import PartitionReporter


def session_id(settings: Settings, host: str, port: int) -> str:
    """The MQTT client id of the persistent session on one broker: MQTT_CLIENT_ID itself on the first broker (so
    adding brokers keeps the session it had), MQTT_CLIENT_ID-host-port on the others."""
    if (host, port) == settings.mqtt_brokers[0]:
        return settings.mqtt_client_id
    return f"{settings.mqtt_client_id}-{host}-{port}".replace(":", "_")


class Edge:
    """Everything between devices and the ingest partitions; stateless, so it runs as many times as needed."""

    def __init__(self, settings: Settings, db: Database):
        self.settings = settings
        self.db = db
        self.publisher = ConfirmPublisher(settings.amqp_url, name="collector-edge",
                                          on_state=lambda ready: metrics.PUBLISHER_READY.set(int(ready)),
                                          max_unconfirmed=settings.publish_window,
                                          partitions=settings.ingest_partitions)
        self.directory = DeviceDirectory(PostgresDevices(db), ttl=settings.device_cache_ttl)
        self.ingest = Ingest(self.publisher, self.directory, metrics.EdgeObserver(),
                             max_bytes=settings.max_payload_bytes, partitions=settings.ingest_partitions)
        # One bridge per broker, all on the publisher's I/O loop: a spec meter's copy of a message through its
        # second broker flows on like the first; its partition's sequencer drops it (REQ-BROKER-001, REQ-DEDUP-001).
        self.bridges = [MqttBridge(self.ingest, host=host, port=port, client_id=session_id(settings, host, port),
                                   loop=lambda: self.publisher.ioloop, auth=settings.mqtt_auth,
                                   prefix=settings.mqtt_topic_prefix,
                                   share_group=settings.mqtt_share_group, keepalive=settings.mqtt_keepalive)
                        for host, port in settings.mqtt_brokers]
        self.bridge = self.bridges[0]
        metrics.PENDING_ACKS.set_function(lambda: sum(b.pending_acks for b in self.bridges))  # read at scrape time
        self.reporter = PartitionReporter(settings.amqp_url, [topology.ingest_queue(p).name
                                                              for p in range(settings.ingest_partitions)],
                                          name="collector-edge-report")
        self.http: HttpIngest | None = None
        if settings.http_enabled:
            app = create_app(self.ingest, max_bytes=settings.max_payload_bytes,
                             require_token=settings.http_require_token)
            self.http = HttpIngest(app, settings.http_port, threads=settings.http_threads,
                                   cert_file=settings.tls_cert_file, key_file=settings.tls_key_file)

    def start(self, timeout: float = 15.0) -> Edge:
        """Connect to RabbitMQ, load devices, then open MQTT and HTTP."""
        self.publisher.start(timeout)
        self.directory.start()
        for bridge in self.bridges:
            bridge.start()
        if self.http is not None:
            self.http.start()
        self.reporter.start()
        return self

    def checks(self) -> dict:
        """Readiness probes for iothub.health.serve."""
        # Ready while any broker is read: a meter publishes to all of its brokers, so one carries its data.
        return {"mqtt": lambda: any(b.connected for b in self.bridges), "rabbitmq": lambda: self.publisher.ready,
                "database": self.db.ping}

    def stop(self) -> None:
        """Stop intake, let in-flight publishes settle, close RabbitMQ."""
        if self.http is not None:
            self.http.stop()
        for bridge in self.bridges:
            bridge.stop()
        self.directory.stop()
        self.reporter.stop()
        self.publisher.stop()
