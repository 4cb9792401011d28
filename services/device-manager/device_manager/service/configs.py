"""Desired configuration: versioned, changed only by a real change, sent as update_config {version, config}."""

from __future__ import annotations

from typing import Any

CONFIG_KEYS = ("sampling_interval_s", "send_interval_s", "hello_interval_s", "samples_per_datagram")


def next_version(current: dict[str, Any] | None, current_version: int, desired: dict[str, Any]) -> int | None:
    """The new version when `desired` differs from `current`, None when nothing changes."""
    if current is not None and current == desired:
        return None
    return current_version + 1


def command_params(desired: dict[str, Any], version: int) -> dict[str, Any]:
    """update_config params; the collector stores `config` as reported and `version` as reported_version."""
    return {"version": version, "config": desired}


def in_sync(desired: dict[str, Any], version: int, reported: dict[str, Any] | None, reported_version: int | None
            ) -> bool:
    """True when the device reported the desired version (or, lacking versions, the same values)."""
    if reported_version is not None:
        return reported_version == version
    return reported is not None and reported == desired
