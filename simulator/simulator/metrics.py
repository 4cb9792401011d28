"""Prometheus view of the fleet's and the MQTT adapter's counters (read at scrape time, nothing on the hot path)."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from simulator.fleet import Fleet
from simulator.mqtt import MqttSink


class SimulatorCollector(Collector):
    """iothub_simulator_* metrics."""

    def __init__(self, fleet: Fleet, sink: MqttSink):
        self.fleet, self.sink = fleet, sink

    def collect(self):
        """Build the metric families from the live counters."""
        published = CounterMetricFamily("iothub_simulator_messages_published", "Messages handed to MQTT by type",
                                        labels=["msg_type"])
        for msg_type, n in list(self.fleet.published.items()):
            published.add_metric([msg_type], n)
        yield published
        errors = CounterMetricFamily("iothub_simulator_publish_errors", "Publishes refused or delayed",
                                     labels=["reason"])
        for reason, n in [*self.fleet.errors.items(), *self.sink.errors.items()]:
            errors.add_metric([reason], n)
        yield errors
        faults = CounterMetricFamily("iothub_simulator_faults_injected", "Injected faults by kind", labels=["kind"])
        for kind, n in list(self.fleet.faults.items()):
            faults.add_metric([kind], n)
        yield faults
        cmds = CounterMetricFamily("iothub_simulator_commands", "Commands answered", labels=["cmd", "result"])
        for (cmd, result), n in list(self.fleet.commands.items()):
            cmds.add_metric([cmd, result], n)
        yield cmds
        yield CounterMetricFamily("iothub_simulator_messages_acked", "PUBACKs received", value=self.sink.acked)
        yield GaugeMetricFamily("iothub_simulator_devices", "Simulated devices", value=len(self.fleet.devices))
        yield GaugeMetricFamily("iothub_simulator_connections", "MQTT connections", value=len(self.sink.conns))


def register(fleet: Fleet, sink: MqttSink) -> None:
    """Expose the counters on the default registry."""
    REGISTRY.register(SimulatorCollector(fleet, sink))
