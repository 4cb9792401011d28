"""Prometheus metrics of the collector's edge and sequencer stages (prefix iothub_collector_)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from collector.edge.service import ACCEPTED, FAILED, REJECTED, Outcome
from collector.sequencing.seq import Status, Verdict

RECEIVED = Counter("iothub_collector_messages_received", "Device messages received", ["source", "msg_type"])
BRIDGED = Counter("iothub_collector_messages_bridged", "Messages a bridge handed to their ingest partition",
                  ["source"])
ACCEPTED_TOTAL = Counter("iothub_collector_messages_accepted", "Messages the sequencer accepted and published",
                         ["source"])
REJECTED_TOTAL = Counter("iothub_collector_messages_rejected", "Messages rejected", ["source", "reason"])
DUPLICATES = Counter("iothub_collector_duplicates", "Sequenced messages dropped as duplicates", ["source"])
GAPS = Counter("iothub_collector_gaps", "Forward jumps in a device's sequence")
MISSING = Counter("iothub_collector_missing_messages", "Sequence numbers skipped by gaps")
REBOOTS = Counter("iothub_collector_reboots", "Device reboots recognised (new epochs)")
PUBLISH_FAILURES = Counter("iothub_collector_publish_failures", "Publishes RabbitMQ nacked or lost", ["source"])
BRIDGE_LATENCY = Histogram("iothub_collector_bridge_latency_seconds", "Receipt to the ingest partition's confirm",
                           buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
PENDING_ACKS = Gauge("iothub_collector_pending_acks", "MQTT messages received but not yet acknowledged")
MQTT_CONNECTED = Gauge("iothub_collector_mqtt_connected", "1 while the MQTT session to this broker is up", ["broker"])
PUBLISHER_READY = Gauge("iothub_collector_publisher_ready", "1 while the RabbitMQ confirm channel is open")


class EdgeObserver:
    """Counts the edge's outcomes; implements collector.edge.service.Observer."""

    def __init__(self) -> None:
        # labels() costs more than inc(); the label sets are few, so resolve each once.
        self._received: dict[tuple[str, str], object] = {}
        self._bridged = {source: BRIDGED.labels(source) for source in ("mqtt", "http")}

    def received(self, source: str, msg_type: str) -> None:
        """One message arrived."""
        child = self._received.get((source, msg_type))
        if child is None:
            child = self._received[(source, msg_type)] = RECEIVED.labels(source, msg_type)
        child.inc()

    def outcome(self, source: str, outcome: Outcome) -> None:
        """One message ended at the edge."""
        if outcome.kind == ACCEPTED:
            self._bridged[source].inc()
        elif outcome.kind == REJECTED and outcome.reason is not None:
            REJECTED_TOTAL.labels(source, outcome.reason.value).inc()
        elif outcome.kind == FAILED:
            PUBLISH_FAILURES.labels(source).inc()

    def confirmed(self, seconds: float) -> None:
        """Receipt-to-confirm latency of one bridged message."""
        BRIDGE_LATENCY.observe(seconds)


class SequencerObserver:
    """Counts the sequencer's verdicts; implements collector.sequencing.service.Observer."""

    def __init__(self) -> None:
        self._accepted = {source: ACCEPTED_TOTAL.labels(source) for source in ("mqtt", "http")}

    def judged(self, source: str, verdict: Verdict | None) -> None:
        """One message judged."""
        if verdict is not None and not verdict.accepted:
            DUPLICATES.labels(source).inc()
            return
        self._accepted[source].inc()
        if verdict is not None and verdict.status is Status.GAP:
            GAPS.inc()
            MISSING.inc(verdict.missing)
        elif verdict is not None and verdict.status is Status.REBOOT:
            REBOOTS.inc()
