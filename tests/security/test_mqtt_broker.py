"""The real Mosquitto enforces device identity: TLS only, no anonymous clients, per-device ACLs (dynsec), client
certificates from the device CA only, revocation at once. Reason codes are MQTT 5's (0x87 Not authorized,
0x86 Bad user name or password)."""

from __future__ import annotations

import ssl

import pytest

from iothub import dynsec, pki
from iothub.mqtt_tls import MqttAuth
from tests.support import mqtt as test_mqtt
from tests.support.mqtt_probe import Probe
from tests.support.poll import wait_for

NOT_AUTHORIZED = 0x87
BAD_CREDENTIALS = 0x86


@pytest.fixture(scope="module")
def admin(mqtt_broker):
    """The dynsec admin connection (the device manager's credentials adapter uses the same account)."""
    client = dynsec.Dynsec("127.0.0.1", mqtt_broker.port, test_mqtt.auth(test_mqtt.ADMIN))
    yield client
    client.close()


@pytest.fixture
def connect(mqtt_broker, probes):
    """connect(auth, cert_listener=False) -> a connected Probe."""

    def make(auth: MqttAuth, *, cert_listener: bool = False) -> Probe:
        probe = Probe(mqtt_broker.cert_port if cert_listener else mqtt_broker.port, auth).connect()
        probes.append(probe)
        return probe

    return make


@pytest.fixture
def meter(admin, uid):
    """A device with a password in the broker: (device_id, password)."""
    device_id, password = f"sec-{uid}", f"pw-{uid}"
    admin.run(dynsec.create_device(device_id, password))
    return device_id, password


def _device_auth(device_id: str, password: str) -> MqttAuth:
    return test_mqtt.auth((device_id, password))


def _cert_auth(tmp_path, issued: pki.Issued, name: str) -> MqttAuth:
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert.write_bytes(issued.cert_pem)
    key.write_bytes(issued.key_pem)
    return test_mqtt.auth(None, cert_file=str(cert), key_file=str(key))


def _device_signer(mqtt_broker) -> pki.Signer:
    return pki.Signer((mqtt_broker.certs / "device-ca.crt").read_bytes(),
                      (mqtt_broker.certs / "device-ca.key").read_bytes())


def test_device_publishes_its_data_and_receives_its_commands(connect, meter):
    device_id, password = meter
    bridge = connect(test_mqtt.auth(test_mqtt.BRIDGE))
    assert bridge.subscribe("iot/+/telemetry")[0].value == 1
    device = connect(_device_auth(device_id, password))
    assert device.accepted
    assert device.subscribe(f"iot/{device_id}/command")[0].value == 1
    assert device.publish(f"iot/{device_id}/telemetry", b"reading").value == 0
    wait_for(lambda: bridge.received(f"iot/{device_id}/telemetry") == [b"reading"], what="reading at the bridge")
    commands = connect(test_mqtt.auth(test_mqtt.COMMANDS))
    assert commands.publish(f"iot/{device_id}/command", b"reboot").value == 0
    wait_for(lambda: device.received(f"iot/{device_id}/command") == [b"reboot"], what="command at the device")


def test_device_cannot_publish_as_another_device_or_on_the_command_topic(connect, meter, admin, uid):
    device_id, password = meter
    admin.run(dynsec.create_device(f"other-{uid}", "x"))
    bridge = connect(test_mqtt.auth(test_mqtt.BRIDGE))
    bridge.subscribe("iot/+/telemetry")
    device = connect(_device_auth(device_id, password))
    assert device.publish(f"iot/other-{uid}/telemetry", b"forged").value == NOT_AUTHORIZED
    assert device.publish(f"iot/{device_id}/command", b"self-command").value == NOT_AUTHORIZED
    assert device.publish("iot/x/../telemetry", b"odd").value == NOT_AUTHORIZED
    # Messages on one connection arrive in order: once the allowed one is in, the forged one is never coming.
    device.publish(f"iot/{device_id}/telemetry", b"real")
    wait_for(lambda: bridge.received(f"iot/{device_id}/telemetry"), what="the allowed reading")
    assert bridge.received(f"iot/other-{uid}/telemetry") == []


def test_device_cannot_subscribe_to_other_commands_or_everything(connect, meter, uid):
    device_id, password = meter
    device = connect(_device_auth(device_id, password))
    for topic in (f"iot/other-{uid}/command", "iot/+/command", "iot/#", "#", f"iot/{device_id}/telemetry",
                  "$CONTROL/dynamic-security/#"):
        assert device.subscribe(topic)[0].value == NOT_AUTHORIZED, topic


def test_services_have_only_their_own_rights(connect, meter):
    device_id, _ = meter
    bridge = connect(test_mqtt.auth(test_mqtt.BRIDGE))
    assert bridge.publish(f"iot/{device_id}/command", b"x").value == NOT_AUTHORIZED
    assert bridge.publish(f"iot/{device_id}/telemetry", b"x").value == NOT_AUTHORIZED
    assert bridge.subscribe(f"iot/{device_id}/command")[0].value == NOT_AUTHORIZED
    assert bridge.subscribe("$share/g/iot/+/telemetry")[0].value == 1  # MQTT_SHARE_GROUP
    commands = connect(test_mqtt.auth(test_mqtt.COMMANDS))
    assert commands.publish(f"iot/{device_id}/telemetry", b"x").value == NOT_AUTHORIZED
    assert commands.subscribe("iot/#")[0].value == NOT_AUTHORIZED
    assert commands.publish("$CONTROL/dynamic-security/v1", b"{}").value == NOT_AUTHORIZED


def test_anonymous_wrong_password_and_unknown_user_are_refused(connect, meter):
    device_id, _ = meter
    assert connect(test_mqtt.auth(None)).connack.value in (NOT_AUTHORIZED, BAD_CREDENTIALS)
    assert connect(_device_auth(device_id, "wrong")).connack.value in (NOT_AUTHORIZED, BAD_CREDENTIALS)
    assert connect(_device_auth("nobody-at-all", "pw")).connack.value in (NOT_AUTHORIZED, BAD_CREDENTIALS)


def test_plain_tcp_and_untrusted_server_certificates_are_not_spoken(mqtt_broker, connect, meter):
    plain = connect(MqttAuth(username=meter[0], password=meter[1]))  # no TLS on a TLS port
    assert not plain.accepted
    other_ca = MqttAuth(ca_file=str(_write_other_ca(mqtt_broker)), username=meter[0], password=meter[1])
    probe = connect(other_ca)
    assert isinstance(probe.tls_error, ssl.SSLCertVerificationError)


def _write_other_ca(mqtt_broker):
    path = mqtt_broker.workdir / "other-ca.crt"
    path.write_bytes(pki.make_ca("not the server's CA").cert_pem)
    return path


def test_revoked_device_is_disconnected_at_once_and_refused_after(connect, meter, admin):
    device_id, password = meter
    device = connect(_device_auth(device_id, password))
    assert device.accepted
    admin.run(dynsec.delete_device(device_id))
    wait_for(lambda: device.disconnects, what="the broker dropping the revoked device")
    device.client.loop_stop()
    assert connect(_device_auth(device_id, password)).connack.value in (NOT_AUTHORIZED, BAD_CREDENTIALS)


def test_client_certificate_is_its_device_and_nothing_else(tmp_path, mqtt_broker, connect, admin, uid):
    device_id = f"cert-{uid}"
    admin.run(dynsec.create_device(device_id, None) + dynsec.create_device(f"victim-{uid}", None))
    auth = _cert_auth(tmp_path, _device_signer(mqtt_broker).client(device_id), "device")
    device = connect(auth, cert_listener=True)
    assert device.accepted
    assert device.subscribe(f"iot/{device_id}/command")[0].value == 1
    assert not device.publish(f"iot/{device_id}/telemetry").is_failure  # 0x10: nobody subscribed
    # The CN names the device: the certificate of one meter cannot speak for another.
    assert device.publish(f"iot/victim-{uid}/telemetry").value == NOT_AUTHORIZED
    assert device.subscribe(f"iot/victim-{uid}/command")[0].value == NOT_AUTHORIZED
    # A device without a password cannot use the password listener with any.
    assert connect(_device_auth(device_id, "")).connack.value in (NOT_AUTHORIZED, BAD_CREDENTIALS)


def test_certificates_of_another_ca_or_none_are_refused_at_the_handshake(tmp_path, mqtt_broker, connect, uid):
    rogue = pki.make_ca("rogue device CA")
    forged = pki.Signer(rogue.cert_pem, rogue.key_pem).client(f"cert-{uid}")
    assert not connect(_cert_auth(tmp_path, forged, "forged"), cert_listener=True).accepted
    assert not connect(test_mqtt.auth(None), cert_listener=True).accepted


def test_revoked_certificate_is_disconnected_and_refused(tmp_path, mqtt_broker, connect, admin, uid):
    device_id = f"crl-{uid}"
    admin.run(dynsec.create_device(device_id, None))
    issued = _device_signer(mqtt_broker).client(device_id)
    auth = _cert_auth(tmp_path, issued, "revoked")
    device = connect(auth, cert_listener=True)
    assert device.accepted
    crl = mqtt_broker.certs / "device-ca.crl"
    crl.write_bytes(_device_signer(mqtt_broker).crl([issued.serial]))
    try:
        mqtt_broker.reload()
        admin.run([dynsec.disable_client(device_id)])  # kicks the live session
        wait_for(lambda: device.disconnects, what="the broker dropping the revoked certificate")
        device.client.loop_stop()
        admin.run([dynsec.enable_client(device_id)])  # the CRL alone must now keep it out
        assert not connect(auth, cert_listener=True).accepted
    finally:
        crl.write_bytes(_device_signer(mqtt_broker).crl([]))
        mqtt_broker.reload()
