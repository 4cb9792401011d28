"""Prometheus metrics of the collector's ingest edge (prefix iothub_collector_)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from collector.seq import Status
from collector.service import ACCEPTED, DUPLICATE, FAILED, REJECTED, Outcome

RECEIVED = Counter("iothub_collector_messages_received", "Device messages received", ["source", "msg_type"])
ACCEPTED_TOTAL = Counter("iothub_collector_messages_accepted", "Messages confirmed by RabbitMQ", ["source"])
REJECTED_TOTAL = Counter("iothub_collector_messages_rejected", "Messages rejected", ["source", "reason"])
DUPLICATES = Counter("iothub_collector_duplicates", "Sequenced messages dropped as duplicates", ["source"])
GAPS = Counter("iothub_collector_gaps", "Forward jumps in a device's sequence")
MISSING = Counter("iothub_collector_missing_messages", "Sequence numbers skipped by gaps")
REBOOTS = Counter("iothub_collector_reboots", "Device reboots recognised (new epochs)")
PUBLISH_FAILURES = Counter("iothub_collector_publish_failures", "Publishes RabbitMQ nacked or lost", ["source"])
SEQ_FLUSHES = Counter("iothub_collector_seq_rows_flushed", "device_seq_tracking rows written")
BRIDGE_LATENCY = Histogram("iothub_collector_bridge_latency_seconds", "Receipt to RabbitMQ confirm",
                           buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
PENDING_ACKS = Gauge("iothub_collector_pending_acks", "MQTT messages received but not yet acknowledged")
MQTT_CONNECTED = Gauge("iothub_collector_mqtt_connected", "1 while the MQTT session to this broker is up", ["broker"])
PUBLISHER_READY = Gauge("iothub_collector_publisher_ready", "1 while the RabbitMQ confirm channel is open")


class PrometheusObserver:
    """Counts ingest outcomes; implements collector.service.Observer."""

    def __init__(self) -> None:
        # labels() costs more than inc(); the label sets are few, so resolve each once.
        self._received: dict[tuple[str, str], object] = {}
        self._accepted = {source: ACCEPTED_TOTAL.labels(source) for source in ("mqtt", "http")}

    def received(self, source: str, msg_type: str) -> None:
        """One message arrived."""
        child = self._received.get((source, msg_type))
        if child is None:
            child = self._received[(source, msg_type)] = RECEIVED.labels(source, msg_type)
        child.inc()

    def outcome(self, source: str, outcome: Outcome) -> None:
        """One message ended."""
        if outcome.kind == ACCEPTED:
            self._accepted[source].inc()
            verdict = outcome.verdict
            if verdict is not None and verdict.status is Status.GAP:
                GAPS.inc()
                MISSING.inc(verdict.missing)
            elif verdict is not None and verdict.status is Status.REBOOT:
                REBOOTS.inc()
        elif outcome.kind == DUPLICATE:
            DUPLICATES.labels(source).inc()
        elif outcome.kind == REJECTED and outcome.reason is not None:
            REJECTED_TOTAL.labels(source, outcome.reason.value).inc()
        elif outcome.kind == FAILED:
            PUBLISH_FAILURES.labels(source).inc()

    def confirmed(self, seconds: float) -> None:
        """Receipt-to-confirm latency of one accepted message."""
        BRIDGE_LATENCY.observe(seconds)
