"""MQTT clients of the tests: TLS against the run's CA, with an account of the run's Mosquitto (procs.mosquitto)."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import paho.mqtt.client as mqtt

from iothub import devcerts, dynsec_init
from iothub.mqtt_tls import MqttAuth

# Service accounts of every test broker (iothub.broker_acl roles) and the harness's own "fleet" account, which
# publishes for many devices on one connection and reads every topic, as the tests' fake devices and taps do.
ADMIN = ("iothub-admin", "test-admin-pw")
BRIDGE = ("iothub-bridge", "test-bridge-pw")
COMMANDS = ("iothub-commands", "test-commands-pw")
FLEET = ("test-fleet", "test-fleet-pw")
FLEET_ROLE = {"rolename": "test-fleet", "acls": [
    {"acltype": kind, "topic": "#", "allow": True, "priority": 0}
    for kind in ("publishClientSend", "subscribePattern")]}


@cache
def certs_dir() -> Path:
    """This process's development PKI (iothub.devcerts), made once."""
    path = Path(tempfile.mkdtemp(prefix="iothub-certs-"))
    devcerts.ensure(path)
    return path


def ca_file() -> str:
    """The CA that signed the test brokers' server certificate."""
    return str(certs_dir() / "ca.crt")


def write_dynsec(path: Path) -> None:
    """A broker's first dynsec file: the service accounts, any topic prefix of one level, and the fleet account."""
    from iothub.broker_acl import hashed

    fleet = {"username": FLEET[0], **hashed(FLEET[1]), "roles": [{"rolename": FLEET_ROLE["rolename"]}]}
    dynsec_init.write(path, dict([ADMIN, BRIDGE, COMMANDS]), ("", "+/"),
                      extra={"clients": [fleet], "roles": [FLEET_ROLE]})


def auth(account: tuple[str, str] | None = FLEET, **kw) -> MqttAuth:
    """TLS + an account (None: no credentials at all)."""
    user, password = account or (None, None)
    return MqttAuth(ca_file=ca_file(), username=user, password=password, **kw)


def client(*args, account: tuple[str, str] | None = FLEET, **kw) -> mqtt.Client:
    """A paho client (same arguments) set up for TLS and the account; connect it to broker.port."""
    c = mqtt.Client(*args, **kw)
    auth(account).apply(c)
    return c


def env(account: tuple[str, str] = BRIDGE) -> dict[str, str]:
    """Environment of a service connecting with the account (add MQTT_PORT yourself)."""
    return {"MQTT_TLS_CA": ca_file(), "MQTT_USERNAME": account[0], "MQTT_PASSWORD": account[1]}
