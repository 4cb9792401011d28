"""One collector reading two brokers (MQTT_BROKERS): a meter that publishes every message to both (spec
REQ-BROKER-001) has each stored once, and both brokers' copies are acknowledged."""

from __future__ import annotations

import pytest

from collector.edge.app import session_id
from iothub import topology
from iothub.settings import SettingsError, host_ports
from tests.collector.conftest import Device, telemetry, wipe_session
from tests.support import procs
from tests.support.poll import wait_for


@pytest.fixture
def broker_b(tmp_path):
    """A second Mosquitto with the project's config."""
    server = procs.mosquitto(tmp_path).start()
    yield server
    server.stop()


def test_copies_through_two_brokers_are_published_once_and_both_acked(start_edge, mqtt_broker, broker_b, make_device,
                                                                     tap, uid):
    edge = start_edge(MQTT_BROKERS=f"127.0.0.1:{mqtt_broker.port},127.0.0.1:{broker_b.port}")
    assert len(edge.bridges) == 2 and all(bridge.wait_connected(15) for bridge in edge.bridges)
    dev = make_device()
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{dev}.*"])
    a, b = Device(mqtt_broker.port, f"t{uid}/"), Device(broker_b.port, f"t{uid}/")
    try:
        sent = {seq: telemetry(dev, seq) for seq in (0, 1, 2, 4, 5)}  # 3 lost on the device: a gap, seen once
        for body in sent.values():
            a.send(dev, body)
            b.send(dev, body)
        wait_for(lambda: len(out.drain()) >= 5, what="five messages")
        wait_for(edge.drained, what="both brokers' copies acked")
        assert sorted(x["seq"] for x in out.bodies()) == [0, 1, 2, 4, 5]
        state = edge.seq_state(dev)
        assert (state.duplicates_total, state.gaps_total, state.missing_total) == (5, 1, 1)
    finally:
        a.close()
        b.close()
        edge.stop()
        for server in (mqtt_broker, broker_b):  # a session per broker, named after it
            wipe_session(server.port, session_id(edge.settings, "127.0.0.1", server.port))


def test_broker_lists_parse_and_bad_ones_are_refused():
    assert host_ports("a:1884, b ,[::1]:1885,[::2]", 1883, name="MQTT_BROKERS") == (
        ("a", 1884), ("b", 1883), ("::1", 1885), ("::2", 1883))
    for bad in ("a:x", "a:0", "a:1,a:1"):
        with pytest.raises(SettingsError):
            host_ports(bad, 1883, name="MQTT_BROKERS")


def test_a_lagging_broker_delivering_an_earlier_boot_after_the_power_cycle_stores_nothing_twice(
        start_edge, mqtt_broker, broker_b, make_device, tap, uid):
    edge = start_edge(MQTT_BROKERS=f"127.0.0.1:{mqtt_broker.port},127.0.0.1:{broker_b.port}")
    assert all(bridge.wait_connected(15) for bridge in edge.bridges)
    dev = make_device()
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{dev}.*"])
    a, b = Device(mqtt_broker.port, f"t{uid}/"), Device(broker_b.port, f"t{uid}/")
    try:
        first_boot = [telemetry(dev, seq) for seq in range(100)]
        second_boot = [telemetry(dev, seq) for seq in range(5)]  # powered on again: seq from 0, later timestamps
        for body in first_boot + second_boot:
            a.send(dev, body)
        wait_for(lambda: len(out.drain()) >= 105, what="both boots through broker A")
        for body in first_boot:  # broker B was cut off and delivers its backlog only now
            b.send(dev, body)
        wait_for(lambda: edge.drained() and edge.seq_state(dev).duplicates_total == 100, what="B's backlog judged")
        keys = sorted((x["epoch"], x["seq"]) for x in out.bodies())
        assert keys == sorted([(0, s) for s in range(100)] + [(1, s) for s in range(5)])
    finally:
        a.close()
        b.close()
        edge.stop()
        for server in (mqtt_broker, broker_b):
            wipe_session(server.port, session_id(edge.settings, "127.0.0.1", server.port))
