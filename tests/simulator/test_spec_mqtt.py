"""The spec profile over real Mosquitto: QoS 2, telemetry as heartbeat, every message on every broker."""

from __future__ import annotations

import queue
import uuid

import pytest

from iothub.contract.topics import command_topic, parse_device_topic
from simulator.mqtt import MqttSink
from tests.simulator.conftest import SHA, SPEC_OTA, WHOLE_SECONDS, Subscriber, make_settings, signed
from tests.support.poll import wait_for
from tests.support.procs import free_port

LEGACY_OTA = {"fw_version": "2.2.0", "url": SPEC_OTA["fw_url"], "sha256": SHA, "size": SPEC_OTA["fw_size_bytes"]}


@pytest.fixture
def subscribers(mqtt_broker, second_broker):
    """One QoS 2 subscriber to iot/# on each of the two brokers."""
    subs = [Subscriber(b.port, "iot/#", qos=2) for b in (mqtt_broker, second_broker)]
    yield subs
    for sub in subs:
        sub.close()


def send(sub: Subscriber, dev: str, cmd: str, params: dict, cmd_id: str | None = None) -> str:
    """Publish a command at QoS 2; returns its cmd_id."""
    cmd_id = cmd_id or str(uuid.uuid4())
    sub.publish(command_topic(dev), signed(dev, cmd_id, cmd, params), qos=2)
    return cmd_id


def acks(sub: Subscriber, dev: str, cmd_id: str) -> list:
    """The command_acks of one command, in arrival order."""
    return [e for e in sub.envelopes(dev, "command_ack") if e.body["cmd_id"] == cmd_id]


def hello_after(sub: Subscriber, dev: str, cmd_id: str):
    """The hello that answered request_status `cmd_id` (it follows the ack), or None yet."""
    ack = acks(sub, dev, cmd_id)
    later = [e for e in sub.envelopes(dev, "hello") if ack and e.seq > ack[0].seq]
    return later[0] if later else None


def sequenced_bytes(sub: Subscriber, dev: str) -> set[tuple[str, bytes]]:
    """(topic, payload) of the device's sequenced messages (everything but status and commands)."""
    return {(t, p) for t, p, _ in sub.received() if t.startswith(f"iot/{dev}/") and not t.endswith(("/status",
                                                                                                     "/command"))}


def test_spec_device_publishes_at_qos_2_and_ota_status_at_qos_1(run_fleet, mqtt_broker, uid):
    dev = f"s{uid}-000000"
    sub = Subscriber(mqtt_broker.port, f"iot/{dev}/#", qos=2)
    try:
        run_fleet("--profile", "spec", "--devices", "1", "--id-prefix", f"s{uid}", "--send-interval", "1",
                  "--hello-interval", "0.5", "--ota-step", "0.05")
        wait_for(lambda: sub.envelopes(dev, "telemetry") and len(sub.envelopes(dev, "hello")) >= 2,
                 what="telemetry and hellos")
        cmd_id = send(sub, dev, "start_ota", SPEC_OTA)
        wait_for(lambda: [e for e in sub.envelopes(dev, "hello") if e.body["fw_version"] == "2.2.0"],
                 what="hello with the new firmware")
        assert acks(sub, dev, cmd_id)[0].body["result"] == "accepted"
        qos: dict[str, set[int]] = {}
        for topic, _, q in sub.received():
            kind = parse_device_topic(topic)
            if kind:  # not our own command
                qos.setdefault(kind[1], set()).add(q)
        assert qos == {"telemetry": {2}, "hello": {2}, "command_ack": {2}, "ota_status": {1}, "status": {1}}
        states = [e.body["ota_state"] for e in sub.envelopes(dev, "ota_status")]
        assert states == ["downloading"] * 5 + ["verifying", "applying", "success"]
    finally:
        sub.close()


def test_spec_device_heartbeat_is_its_telemetry(run_fleet, subscriber, uid):
    dev = f"n{uid}-000000"
    running = run_fleet("--profile", "spec", "--devices", "1", "--id-prefix", f"n{uid}", "--type-mix",
                        "power_meter_ac", "--send-interval", "0.3", "--hello-interval", "5")
    wait_for(lambda: len(subscriber.envelopes(dev, "telemetry")) >= 4, what="telemetry")
    envs = [e for e in subscriber.envelopes(dev) if e.is_sequenced]
    assert (envs[0].msg_type, envs[0].seq) == ("telemetry", 0) and not subscriber.envelopes(dev, "hello")
    assert [e.seq for e in envs] == list(range(len(envs)))
    body = envs[0].body
    assert WHOLE_SECONDS.match(body["ts"]) and all(WHOLE_SECONDS.match(m["ts"]) for m in body["measurements"])
    assert {m["type"]: "unit" in m for m in body["measurements"]} == {
        "voltage_ac": True, "current_ac": True, "frequency": True, "pf": False, "thd_v": True, "thd_i": True}
    status = subscriber.envelopes(dev, "status")[0].body
    assert status.keys() == {"v", "device_id", "status", "ts"} and status["status"] == "online"
    cmd_id = send(subscriber, dev, "request_status", {})
    hello = wait_for(lambda: hello_after(subscriber, dev, cmd_id), what="hello answering request_status")
    assert hello.body["broker_connections"] == 1 and acks(subscriber, dev, cmd_id)[0].body["result"] == "accepted"
    assert running.fleet.devices[0].acks[cmd_id].result == "accepted"


def test_update_config_spec_keys_and_start_ota_legacy_names(run_fleet, subscriber, uid):
    dev = f"k{uid}-000000"
    run_fleet("--profile", "spec", "--devices", "1", "--id-prefix", f"k{uid}", "--send-interval", "30")
    wait_for(lambda: subscriber.envelopes(dev, "status"), what="online status")
    sent = {
        send(subscriber, dev, "update_config", {"sampling_cadence_ms": 50}): ("rejected", "sampling_cadence_ms"),
        send(subscriber, dev, "update_config", {"hello_interval_s": 4}): ("rejected", "hello_interval_s"),
        send(subscriber, dev, "update_config", {"tls_enabled": "on"}): ("rejected", "tls_enabled"),
        send(subscriber, dev, "update_config", {"config": {"hello_interval_s": 3600}, "version": 2}):
            ("accepted", "hello_interval_s updated to 3600"),
        send(subscriber, dev, "update_config", {"send_interval_s": 1, "sampling_cadence_ms": 1000}):
            ("accepted", "sampling_cadence_ms updated to 1000; send_interval_s updated to 1"),
        send(subscriber, dev, "start_ota", LEGACY_OTA): ("accepted", ""),
    }
    for cmd_id, (result, detail) in sent.items():
        ack = wait_for(lambda cmd_id=cmd_id: acks(subscriber, dev, cmd_id), what=f"ack of {cmd_id}")[0]
        assert (ack.body["result"], detail in ack.body["detail"]) == (result, True), ack.body
    wait_for(lambda: len(subscriber.envelopes(dev, "telemetry")) >= 2, what="telemetry every second")


@pytest.mark.parametrize("mode", ["shared", "per-device"])
def test_every_message_reaches_every_broker_and_a_command_runs_once(run_fleet, mqtt_broker, second_broker,
                                                                    subscribers, uid, mode):
    prefix = f"m{uid}"
    dev = f"{prefix}-000000"
    a, b = subscribers
    running = run_fleet("--profile", "spec", "--devices", "2", "--id-prefix", prefix, "--connection-mode", mode,
                        "--send-interval", "0.2", "--brokers",
                        f"127.0.0.1:{mqtt_broker.port},127.0.0.1:{second_broker.port}")
    wait_for(lambda: all(len(s.envelopes(dev, "telemetry")) >= 5 for s in subscribers), what="telemetry on both")
    snapshot = [sequenced_bytes(s, dev) for s in subscribers]
    wait_for(lambda: snapshot[0] <= sequenced_bytes(b, dev) and snapshot[1] <= sequenced_bytes(a, dev),
             what="the same bytes on both brokers")
    assert len(snapshot[0]) >= 5 and {s.envelopes(dev, "status")[0].body["status"] for s in subscribers} == {"online"}
    device = running.fleet.devices[0]
    cmd_id = send(a, dev, "reboot", {})
    send(b, dev, "reboot", {}, cmd_id)  # the server's copy through the other broker
    for s in subscribers:  # the answer and one repeat for the second broker, each on both brokers
        wait_for(lambda s=s: len(acks(s, dev, cmd_id)) == 2, what="two acks")
    assert device.epoch == 1 and len({e.seq for e in acks(a, dev, cmd_id)}) == 2
    status_id = send(a, dev, "request_status", {})
    hello = wait_for(lambda: hello_after(b, dev, status_id), what="hello on the second broker")
    assert hello.body["broker_connections"] == 2
    second_broker.stop()
    wait_for(lambda: running.sink.connected_brokers(0) == 1, what="the second broker gone")
    status_id = send(a, dev, "request_status", {})
    hello = wait_for(lambda: hello_after(a, dev, status_id), what="hello with one broker down")
    assert hello.body["broker_connections"] == 1
    assert device.epoch == 1


@pytest.mark.parametrize("mode", ["shared", "per-device"])
def test_update_config_brokers_moves_the_device(run_fleet, mqtt_broker, second_broker, subscribers, uid, mode):
    prefix = f"b{uid}"
    dev = f"{prefix}-000000"
    a, b = subscribers
    running = run_fleet("--profile", "spec", "--devices", "1", "--id-prefix", prefix, "--connection-mode", mode,
                        "--send-interval", "0.2")
    wait_for(lambda: len(a.envelopes(dev, "telemetry")) >= 2, what="telemetry on the first broker")
    both = [{"host": "127.0.0.1", "port": s.port} for s in (mqtt_broker, second_broker)]
    cmd_id = send(a, dev, "update_config", {"brokers": both})
    ack = wait_for(lambda: acks(a, dev, cmd_id), what="ack")[0]
    assert ack.body["detail"] == f"brokers updated to 127.0.0.1:{mqtt_broker.port},127.0.0.1:{second_broker.port}"
    wait_for(lambda: len(b.envelopes(dev, "telemetry")) >= 3 and b.envelopes(dev, "status"), what="second broker")
    assert b.envelopes(dev, "status")[0].body["status"] == "online"
    cmd_id = send(b, dev, "update_config", {"brokers": both[1:]})
    last_on_a = wait_for(lambda: acks(a, dev, cmd_id), what="ack on both")[0].seq  # sent before the move
    wait_for(lambda: [e for e in b.envelopes(dev, "telemetry") if e.seq > last_on_a + 3], what="telemetry after it")
    assert not [e for e in a.envelopes(dev) if e.is_sequenced and e.seq > last_on_a]
    wait_for(lambda: a.envelopes(dev, "status")[-1].body["status"] == "offline", what="goodbye")  # no Last Will
    assert running.sink.connected_brokers(0) == 1 and len(running.sink.groups) == 1


def test_a_fleet_starts_while_one_of_its_brokers_is_down(mqtt_broker, subscriber, uid):
    dev = f"d{uid}-000000"
    s = make_settings("--profile", "spec", "--devices", "1", "--id-prefix", f"d{uid}", "--brokers",
                      f"127.0.0.1:{mqtt_broker.port},127.0.0.1:{free_port()}")
    sink = MqttSink(s, [dev], queue.Queue())
    try:
        sink.start(s, timeout=0.5)
        assert sink.connected_brokers(0) == 1 and not sink.connected()
        assert sink.publish(0, f"iot/{dev}/telemetry", b"{}", qos=2)
        wait_for(lambda: [p for t, p, _ in subscriber.received(f"{dev}/telemetry")], what="the live broker's copy")
    finally:
        sink.close()
    s = make_settings("--brokers", f"127.0.0.1:{free_port()}")
    sink = MqttSink(s, [dev], queue.Queue())
    try:
        with pytest.raises(ConnectionError):
            sink.start(s, timeout=0.2)
    finally:
        sink.close()
