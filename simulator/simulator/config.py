"""A device's configuration and the update_config keys that change it (IoT Hub's and the firmware spec's)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

Broker = tuple[str, int]  # (host, port)
MAX_MEASUREMENTS = 200
MAX_BROKERS = 5


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """The knobs update_config may change."""

    sampling_interval_s: float = 1.0
    send_interval_s: float = 10.0
    hello_interval_s: float = 60.0
    samples_per_datagram: int = 0  # 0: send_interval / sampling_interval
    brokers: tuple[Broker, ...] = ()
    tls_enabled: bool = False  # stored and reported only: the simulator does not speak TLS

    def samples(self, metrics_per_sample: int) -> int:
        """Samples in one datagram, capped so a valid datagram stays within the protocol's 200 measurements."""
        n = self.samples_per_datagram or round(self.send_interval_s / self.sampling_interval_s)
        return max(1, min(n, MAX_MEASUREMENTS // metrics_per_sample))

    def updated(self, params: dict[str, Any], *, spec: bool = False) -> tuple[DeviceConfig, list[str], list[str]]:
        """A copy with the known keys applied, the "key updated to value" notes and the ignored keys.

        Raises ValueError naming the first bad key; `spec` applies the firmware spec's ranges to the keys it shares
        with IoT Hub (send_interval_s, hello_interval_s).
        """
        changes: dict[str, Any] = {}
        notes = []
        for key, check in KEYS.items():  # KEYS' order: sampling_cadence_ms wins over sampling_interval_s
            if key in params:
                field, value = check(key, params[key], spec)
                changes[field] = value
                notes.append(f"{key} updated to {describe(params[key])}")
        ignored = sorted(k for k in params if k not in KEYS)
        return replace(self, **changes), notes, ignored


def number(key: str, value: Any, low: float | None = None, high: float | None = None) -> float:
    """A finite number, positive or within [low, high]; raises ValueError naming the key."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} must be a number")
    if low is None and value <= 0:
        raise ValueError(f"{key} must be positive")
    if low is not None and not low <= value <= high:
        raise ValueError(f"{key} must be between {low:g} and {high:g}")
    return float(value)


def parse_brokers(value: Any, key: str = "brokers") -> tuple[Broker, ...]:
    """1 to 5 distinct {host, port} objects -> ((host, port), ...); raises ValueError naming the key."""
    shape = f"{key} must be a list of 1 to {MAX_BROKERS} {{host, port}} objects"
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_BROKERS:
        raise ValueError(shape)
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("host"), str) or not item["host"].strip():
            raise ValueError(shape)
        port = item.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"{key} port must be an integer between 1 and 65535")
        out.append((item["host"].strip(), port))
    if len(set(out)) != len(out):
        raise ValueError(f"{key} must not name a broker twice")
    return tuple(out)


def describe(value: Any) -> str:
    """A value as the ack's detail shows it: 5, 0.5, true, host:port,host:port."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(f"{b.get('host')}:{b.get('port')}" if isinstance(b, dict) else str(b) for b in value)
    return str(value)


def _interval(low: float, high: float) -> Callable[[str, Any, bool], tuple[str, float]]:
    return lambda key, value, spec: (key, number(key, value, low, high) if spec else number(key, value))


def _cadence(key: str, value: Any, spec: bool) -> tuple[str, float]:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 60000:
        raise ValueError(f"{key} must be an integer between 100 and 60000")
    return "sampling_interval_s", value / 1000


def _samples(key: str, value: Any, spec: bool) -> tuple[str, int]:
    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0
            or value != int(value)):
        raise ValueError(f"{key} must be a non-negative integer")
    return key, int(value)


def _tls(key: str, value: Any, spec: bool) -> tuple[str, bool]:
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be a boolean")
    return key, value


# update_config key -> check(key, value, spec) -> (DeviceConfig field, value); raises ValueError naming the key.
# IoT Hub's own keys (sampling_interval_s, samples_per_datagram) stay accepted in both profiles.
KEYS: dict[str, Callable[[str, Any, bool], tuple[str, Any]]] = {
    "sampling_interval_s": lambda key, value, spec: (key, number(key, value)),
    "sampling_cadence_ms": _cadence,
    "send_interval_s": _interval(1, 3600),
    "hello_interval_s": _interval(5, 3600),
    "samples_per_datagram": _samples,
    "brokers": lambda key, value, spec: (key, parse_brokers(value, key)),
    "tls_enabled": _tls,
}
