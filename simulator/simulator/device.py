"""One simulated power meter: sequence counter, configuration, and the protocol v2 messages it builds."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field, replace
from typing import Any

from simulator.values import ValueModel

SEQ_MODULUS = 2**32
CONFIG_KEYS = ("sampling_interval_s", "send_interval_s", "hello_interval_s", "samples_per_datagram")
MAX_MEASUREMENTS = 200


class SeqCounter:
    """uint32 message counter: +1 for every sequenced message, wraps at 2^32, restarts at 0 on reboot."""

    __slots__ = ("next",)

    def __init__(self, start: int = 0):
        self.next = start % SEQ_MODULUS

    def take(self) -> int:
        """The seq of the message being sent now."""
        seq = self.next
        self.next = (seq + 1) % SEQ_MODULUS
        return seq

    def skip(self, count: int) -> None:
        """Lose `count` numbers, as a device that dropped messages from its buffer does."""
        self.next = (self.next + count) % SEQ_MODULUS

    def reset(self) -> None:
        """Start a new epoch at 0."""
        self.next = 0


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """The knobs update_config may change."""

    sampling_interval_s: float = 1.0
    send_interval_s: float = 10.0
    hello_interval_s: float = 60.0
    samples_per_datagram: int = 0  # 0: send_interval / sampling_interval

    def samples(self, metrics_per_sample: int) -> int:
        """Samples in one datagram, capped so a valid datagram stays within the protocol's 200 measurements."""
        n = self.samples_per_datagram or round(self.send_interval_s / self.sampling_interval_s)
        return max(1, min(n, MAX_MEASUREMENTS // metrics_per_sample))

    def updated(self, params: dict[str, Any]) -> tuple[DeviceConfig, list[str]]:
        """A copy with the known keys applied; raises ValueError on a bad value; returns the ignored keys."""
        changes: dict[str, Any] = {}
        for key in (k for k in CONFIG_KEYS if k in params):
            value = params[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{key} must be a number")
            if key == "samples_per_datagram":
                if value < 0 or value != int(value):
                    raise ValueError("samples_per_datagram must be a non-negative integer")
                changes[key] = int(value)
            elif value <= 0:
                raise ValueError(f"{key} must be positive")
            else:
                changes[key] = float(value)
        ignored = sorted(k for k in params if k not in CONFIG_KEYS)
        return replace(self, **changes), ignored


def iso(ts: float) -> str:
    """UTC ISO 8601 with milliseconds and a Z, as devices send it."""
    whole = int(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((ts - whole) * 1000):03d}Z"


@dataclass(slots=True)
class Device:
    """Mutable state of one simulated device (owned by the fleet's single scheduling thread)."""

    device_id: str
    device_type: str
    index: int
    fw_version: str
    config: DeviceConfig
    values: ValueModel
    booted_at: float = 0.0  # wall clock of the last power-on
    epoch: int = 0  # how many times this device restarted its sequence, as the ledger reports it
    seq: SeqCounter = field(default_factory=SeqCounter)
    last_payload: bytes | None = None  # the message a duplicate re-sends
    ota: Any = None  # the running simulator.ota.OtaJob, if any
    tokens: dict[str, int] = field(default_factory=dict)  # scheduler generation per timer kind
    acks: dict[str, dict] = field(default_factory=dict)  # recent cmd_id -> ack body, for redelivered commands

    def base(self, msg_type: str, now: float) -> dict[str, Any]:
        """Envelope fields of a sequenced message; takes the next seq."""
        return {"v": 2, "device_id": self.device_id, "msg_type": msg_type, "seq": self.seq.take(), "ts": iso(now)}

    def hello(self, now: float, rng: random.Random, connections: int = 1) -> dict[str, Any]:
        """Heartbeat with firmware, uptime and health."""
        body = self.base("hello", now)
        body.update(fw_version=self.fw_version, uptime_s=max(0, int(now - self.booted_at)),
                    broker_connections=connections, buf_usage_pct=round(rng.uniform(0.0, 5.0), 1),
                    temp_internal=round(rng.uniform(35.0, 45.0), 1))
        return body

    def telemetry(self, now: float, rng: random.Random) -> dict[str, Any]:
        """A datagram of `samples` samples spaced by the sampling interval, the newest at `now`."""
        metrics = self.values.metrics
        n = self.config.samples(len(metrics))
        step = self.config.sampling_interval_s
        measurements = []
        for k in range(n - 1, -1, -1):
            ts = iso(now - k * step)
            for m, val in zip(metrics, self.values.step(rng), strict=True):
                measurements.append({"ts": ts, "type": m.type, "val": val, "unit": m.unit})
        body = self.base("telemetry", now)
        body["measurements"] = measurements
        return body

    def command_ack(self, now: float, cmd_id: str, result: str, detail: str = "") -> dict[str, Any]:
        """The device's answer to a command."""
        body = self.base("command_ack", now)
        body.update(cmd_id=cmd_id, result=result, detail=detail)
        return body

    def ota_status(self, now: float, cmd_id: str, state: str, progress: float, *, target: str,
                   detail: str = "") -> dict[str, Any]:
        """One step of a firmware update."""
        body = self.base("ota_status", now)
        body.update(cmd_id=cmd_id, ota_state=state, progress_pct=progress, fw_version_target=target, detail=detail)
        return body

    def status(self, now: float, online: bool) -> dict[str, Any]:
        """Retained connection status; not sequenced."""
        return {"v": 2, "device_id": self.device_id, "status": "online" if online else "offline", "ts": iso(now)}

    def reboot(self, now: float) -> None:
        """Restart: new epoch, seq from 0, uptime from 0, any OTA in flight abandoned."""
        self.epoch += 1
        self.seq.reset()
        self.booted_at = now
        self.ota = None
        self.last_payload = None
