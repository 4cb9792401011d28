"""Who may do what on the MQTT broker: the Dynamic Security roles of devices and services, declared once.

Each device gets its own role naming its own topics (Mosquitto 2.0's dynsec plugin does not substitute `%u` in ACL
topics); its client's username is the device_id, which is also the certificate's CN on the client-certificate
listener, so both listeners apply the same role.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from iothub.contract.topics import COMMAND_SUFFIX, DEVICE_TOPICS, ROOT

ROLE_DEVICE_PREFIX = "iot-device:"
ROLE_BRIDGE = "iot-bridge"  # collector edges: read the device data topics
ROLE_COMMANDS = "iot-commands"  # the device manager's command publisher
ROLE_ADMIN = "iot-dynsec-admin"  # the device manager's credentials adapter, nothing else
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"

# Service accounts: username -> role; their passwords come from the environment (docs/security.md).
SERVICE_ROLES = {"iothub-bridge": ROLE_BRIDGE, "iothub-commands": ROLE_COMMANDS, "iothub-admin": ROLE_ADMIN}
SERVICE_PREFIX = "iothub-"  # reserved: no device_id may take a service account's name (or a future one's)
PBKDF2_ITERATIONS = 101  # what mosquitto_ctrl and the plugin itself use for dynsec passwords


def _acl(acltype: str, topic: str, *, allow: bool = True, priority: int = 0) -> dict:
    return {"acltype": acltype, "topic": topic, "allow": allow, "priority": priority}


def roles(prefixes: tuple[str, ...] = ("",)) -> dict[str, list[dict]]:
    """Service role name -> ACL list, for every topic prefix the deployment uses (MQTT_TOPIC_PREFIX; '+/' = any one)."""
    bridge, commands = [], []
    for p in prefixes:
        for suffix in DEVICE_TOPICS:  # plain and MQTT 5 shared subscriptions (MQTT_SHARE_GROUP)
            bridge += [_acl("subscribePattern", f"{p}{ROOT}/+/{suffix}"),
                       _acl("subscribePattern", f"$share/+/{p}{ROOT}/+/{suffix}")]
        commands.append(_acl("publishClientSend", f"{p}{ROOT}/+/{COMMAND_SUFFIX}"))
    control = "$CONTROL/dynamic-security/#"
    admin = [_acl("publishClientSend", control), _acl("publishClientReceive", control),
             _acl("subscribePattern", control)]
    return {ROLE_BRIDGE: bridge, ROLE_COMMANDS: commands, ROLE_ADMIN: admin}


def is_service_account(name: str) -> bool:
    """True for a name the broker's service accounts use or may use; a device registered under one could be given
    that account's password through the credentials API."""
    return name in SERVICE_ROLES or name.startswith(SERVICE_PREFIX)


def device_role(device_id: str) -> str:
    """Name of a device's own role."""
    return f"{ROLE_DEVICE_PREFIX}{device_id}"


def device_acls(device_id: str, prefixes: tuple[str, ...] = ("",)) -> list[dict]:
    """A device publishes only below its own `iot/{id}/` (the spec's ACL) but never its own commands, and subscribes
    only to its own command topic. Three entries: the plugin rewrites its whole file on every change, so a
    device's role is kept small."""
    acls = []
    for p in prefixes:
        own, commands = f"{p}{ROOT}/{device_id}", f"{p}{ROOT}/{device_id}/{COMMAND_SUFFIX}"
        acls += [_acl("publishClientSend", f"{own}/#"),
                 _acl("publishClientSend", commands, allow=False, priority=1),  # checked first
                 _acl("subscribePattern", commands)]
    return acls


def hashed(password: str) -> dict:
    """The plugin's stored form of a password: base64 PBKDF2-SHA512 under a random salt."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS, 64)
    return {"salt": base64.b64encode(salt).decode(), "password": base64.b64encode(digest).decode(),
            "iterations": PBKDF2_ITERATIONS}


def initial_config(service_passwords: dict[str, str], prefixes: tuple[str, ...] = ("",)) -> dict:
    """A dynamic-security.json with the roles and the service accounts, and no device yet."""
    clients = [{"username": user, "textName": f"IoT Hub service {user}", **hashed(pw),
                "roles": [{"rolename": SERVICE_ROLES[user]}]} for user, pw in service_passwords.items()]
    return {"clients": clients, "groups": [],
            "roles": [{"rolename": name, "acls": acls} for name, acls in roles(prefixes).items()],
            "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": True, "subscribe": False,
                                 "unsubscribe": True}}
