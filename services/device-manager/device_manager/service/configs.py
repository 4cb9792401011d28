"""Desired configuration: versioned, changed only by a real change, sent as update_config with flat spec params."""

from __future__ import annotations

from typing import Any

# Device spec v2 update_config keys, then samples_per_datagram: an IoT Hub extension the simulator understands.
CONFIG_KEYS = ("sampling_cadence_ms", "send_interval_s", "hello_interval_s", "brokers", "tls_enabled",
               "samples_per_datagram")


def next_version(current: dict[str, Any] | None, current_version: int, desired: dict[str, Any]) -> int | None:
    """The new version when `desired` differs from `current`, None when nothing changes."""
    if current is not None and current == desired:
        return None
    return current_version + 1


def command_params(desired: dict[str, Any]) -> dict[str, Any]:
    """update_config params: the desired settings as flat spec keys."""
    # A spec device knows no version key: the version travels in commands.config_version, which the collector
    # stores as reported_version when the device accepts.
    return {k: desired[k] for k in CONFIG_KEYS if k in desired}


def in_sync(desired: dict[str, Any], version: int, reported: dict[str, Any] | None, reported_version: int | None
            ) -> bool:
    """True when the device reported the desired version (or, lacking versions, the same values)."""
    if reported_version is not None:
        return reported_version == version
    return reported is not None and reported == desired
