"""A client of Mosquitto's Dynamic Security control API (`$CONTROL/dynamic-security/v1`), as its admin account.

Commands go out BATCH per control message and are answered in order; each response's `error` is raised as
DynsecError, except the ones the caller says it expects (e.g. "Client already exists").
"""

from __future__ import annotations

import threading
import uuid

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from iothub.broker_acl import CONTROL_TOPIC, device_acls, device_role
from iothub.mqtt_tls import MqttAuth

# Commands per control message: one. Mosquitto 2.0's plugin rewrites its whole JSON file after every command
# (~0.1-0.2 s at 10,000 devices) and serves nobody meanwhile; one command per message lets traffic through between
# them (docs/benchmarks.md "Device credentials").
BATCH = 1


class DynsecError(RuntimeError):
    """The plugin refused a command (its error text), or did not answer in time."""


class Dynsec:
    """One admin connection; `run` sends commands and returns their responses in order."""

    def __init__(self, host: str, port: int, auth: MqttAuth, *, timeout: float = 10.0):
        self.timeout = timeout
        self._responses: dict[str, dict] = {}
        self._cond = threading.Condition()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"iothub-dynsec-{uuid.uuid4().hex[:8]}")
        auth.apply(self._client)
        self._client.on_message = self._message
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda *_a: self._subscribed.set()
        self._client.on_connect = self._connected
        self._client.connect(host, port)
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.close()
            raise DynsecError(f"no dynsec control connection to {host}:{port}")

    def _connected(self, client, _userdata, _flags, reason, _props) -> None:
        if not reason.is_failure:
            client.subscribe(f"{CONTROL_TOPIC}/response", qos=1)

    def _message(self, _client, _userdata, msg) -> None:
        with self._cond:
            for r in orjson.loads(msg.payload).get("responses", []):
                self._responses[r.get("correlationData", "")] = r
            self._cond.notify_all()

    def run(self, commands: list[dict], *, tolerate: tuple[str, ...] = ()) -> list[dict]:
        """Execute commands; raises DynsecError on the first error not in `tolerate`."""
        out: list[dict] = []
        for start in range(0, len(commands), BATCH):
            batch = [{**c, "correlationData": uuid.uuid4().hex} for c in commands[start:start + BATCH]]
            self._client.publish(CONTROL_TOPIC, orjson.dumps({"commands": batch}), qos=1)
            ids = [c["correlationData"] for c in batch]
            with self._cond:
                if not self._cond.wait_for(lambda ids=ids: all(i in self._responses for i in ids), self.timeout):
                    raise DynsecError("dynsec did not answer in time")
                out += [self._responses.pop(i) for i in ids]
        for r in out:
            if r.get("error") and not any(t in r["error"] for t in tolerate):
                raise DynsecError(f"{r.get('command')}: {r['error']}")
        return out

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


def create_device(device_id: str, password: str | None, prefixes: tuple[str, ...] = ("",)) -> list[dict]:
    """Commands creating a device's role and client (no password: the certificate listener only)."""
    role = device_role(device_id)
    client = {"command": "createClient", "username": device_id, "roles": [{"rolename": role}]}
    if password is not None:
        client["password"] = password
    return [{"command": "createRole", "rolename": role, "acls": device_acls(device_id, prefixes)}, client]


def delete_device(device_id: str) -> list[dict]:
    """Commands deleting a device's client (which disconnects it at once) and its role."""
    return [delete_client(device_id), {"command": "deleteRole", "rolename": device_role(device_id)}]


def set_password(username: str, password: str) -> dict:
    """Command replacing a client's password (the plugin disconnects the client)."""
    return {"command": "setClientPassword", "username": username, "password": password}


def delete_client(username: str) -> dict:
    """Command deleting a client (the plugin disconnects it at once)."""
    return {"command": "deleteClient", "username": username}


def disable_client(username: str) -> dict:
    """Command disabling a client: disconnected now, its logins refused until enabled."""
    return {"command": "disableClient", "username": username}


def enable_client(username: str) -> dict:
    """Command enabling a client again."""
    return {"command": "enableClient", "username": username}
