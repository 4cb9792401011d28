"""One simulated power meter: sequence counter, state, and the protocol v2 messages it builds."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from simulator.config import DeviceConfig
from simulator.profile import IOTHUB, Profile
from simulator.values import ValueModel

SEQ_MODULUS = 2**32


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


def status_body(device_id: str, online: bool, ts: str) -> dict[str, Any]:
    """The retained status and Last Will body (REQ-LWT-001)."""
    return {"v": 2, "device_id": device_id, "status": "online" if online else "offline", "ts": ts}


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
    acks: dict[str, Any] = field(default_factory=dict)  # recent cmd_id -> its ack, for repeated commands
    profile: Profile = IOTHUB
    command_key: bytes | None = None  # verifies the server's command signatures (None: every command is rejected)

    def base(self, msg_type: str, now: float) -> dict[str, Any]:
        """Envelope fields of a sequenced message; takes the next seq."""
        return {"v": 2, "device_id": self.device_id, "msg_type": msg_type, "seq": self.seq.take(),
                "ts": self.profile.stamp(now)}

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
        stamp = self.profile.sample_stamp(step)
        unitless = self.profile.omit_empty_unit
        measurements = []
        for k in range(n - 1, -1, -1):
            ts = stamp(now - k * step)
            for m, val in zip(metrics, self.values.step(rng), strict=True):
                if unitless and not m.unit:  # the spec sends dimensionless readings (pf) without a unit key
                    measurements.append({"ts": ts, "type": m.type, "val": val})
                else:
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
        return status_body(self.device_id, online, self.profile.stamp(now))

    def reboot(self, now: float) -> None:
        """Restart: new epoch, seq from 0, uptime from 0, any OTA in flight abandoned."""
        self.epoch += 1
        self.seq.reset()
        self.booted_at = now
        self.ota = None
        self.last_payload = None
