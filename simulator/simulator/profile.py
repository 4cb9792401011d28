"""Device profiles: how a simulated meter speaks (IoT Hub's protocol.md, or the fleet's firmware spec v2)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from simulator.config import DeviceConfig


def iso(ts: float) -> str:
    """UTC ISO 8601 with milliseconds and a Z."""
    whole = int(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((ts - whole) * 1000):03d}Z"


def iso_seconds(ts: float) -> str:
    """UTC ISO 8601 in whole seconds with a Z, as the firmware spec's examples ("2026-02-12T10:00:10Z")."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ts)))


@dataclass(frozen=True, slots=True)
class Profile:
    """Every behaviour in which the profiles differ; the rest of the simulator reads only these fields."""

    name: str
    qos: dict[str, int]  # msg_type -> QoS; "status" covers the online status and the Last Will
    command_qos: int  # subscription QoS of the command topic
    whole_seconds: bool  # timestamps without fractions
    omit_empty_unit: bool  # dimensionless readings (pf) carry no unit key
    suppress_hello: bool  # REQ-HELLO-001: hellos only when send interval > hello interval
    spec_config: bool  # update_config ranges of the spec and "key updated to value" details
    keepalive: int  # default MQTT keep-alive, seconds
    session_expiry_s: int  # 0: clean MQTT 3.1.1 sessions; else MQTT 5, clean start off, this session expiry
    metrics: dict[str, tuple[str, ...]]  # device type -> the readings it sends; absent: all of values.METRICS

    def stamp(self, ts: float) -> str:
        """A message timestamp in this profile's format."""
        return iso_seconds(ts) if self.whole_seconds else iso(ts)

    def sample_stamp(self, step_s: float) -> Callable[[float], str]:
        """The formatter of measurement timestamps `step_s` apart."""
        # Whole seconds would give sub-second samples one shared ts (the spec allows 100 ms cadence): keep ms then.
        return iso_seconds if self.whole_seconds and step_s == int(step_s) else iso

    def sends_hellos(self, config: DeviceConfig) -> bool:
        """Whether a device with this configuration sends heartbeat hellos (and a hello at boot)."""
        return not self.suppress_hello or config.send_interval_s > config.hello_interval_s


IOTHUB = Profile("iothub", qos=dict.fromkeys(("telemetry", "hello", "command_ack", "ota_status", "status"), 1),
                 command_qos=1, whole_seconds=False, omit_empty_unit=False, suppress_hello=False,
                 spec_config=False, keepalive=30, session_expiry_s=0, metrics={})
# REQ-QOS-001: QoS 2 for telemetry, hello, commands and acks; status (Last Will) and ota/status at QoS 1;
# persistent session, keep-alive 15 s, session expiry 3600 s; a DC datagram at the defaults is "20 measurements:
# 10 V/I pairs".
SPEC = Profile("spec", qos={"telemetry": 2, "hello": 2, "command_ack": 2, "ota_status": 1, "status": 1},
               command_qos=2, whole_seconds=True, omit_empty_unit=True, suppress_hello=True, spec_config=True,
               keepalive=15, session_expiry_s=3600, metrics={"power_meter_dc": ("voltage_dc", "current_dc")})
PROFILES = {p.name: p for p in (IOTHUB, SPEC)}
