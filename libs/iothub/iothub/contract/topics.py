"""MQTT topic names of protocol v2, in one place for devices, collector and API."""

from __future__ import annotations

from iothub.contract.envelope import DEVICE_ID_RE

ROOT = "iot"

# topic suffix -> msg_type the message on it must carry
DEVICE_TOPICS = {
    "telemetry": "telemetry",
    "hello": "hello",
    "status": "status",
    "command/ack": "command_ack",
    "ota/status": "ota_status",
}
COMMAND_SUFFIX = "command"


def device_topic(device_id: str, suffix: str, prefix: str = "") -> str:
    """Topic a device publishes on (suffix from DEVICE_TOPICS) or receives commands on."""
    return f"{prefix}{ROOT}/{device_id}/{suffix}"


def command_topic(device_id: str, prefix: str = "") -> str:
    """Topic a device subscribes to for server commands."""
    return device_topic(device_id, COMMAND_SUFFIX, prefix)


def subscriptions(prefix: str = "", share_group: str | None = None) -> list[str]:
    """Topic filters the collector subscribes to (optionally as an MQTT 5 shared subscription)."""
    filters = [f"{prefix}{ROOT}/+/{suffix}" for suffix in DEVICE_TOPICS]
    if share_group:
        filters = [f"$share/{share_group}/{f}" for f in filters]
    return filters


def parse_device_topic(topic: str, prefix: str = "") -> tuple[str, str] | None:
    """Split a device topic into (device_id, expected msg_type); None when it is not one."""
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix):].split("/", 2)
    if len(parts) != 3 or parts[0] != ROOT or not DEVICE_ID_RE.match(parts[1]):
        return None
    msg_type = DEVICE_TOPICS.get(parts[2])
    return (parts[1], msg_type) if msg_type else None
