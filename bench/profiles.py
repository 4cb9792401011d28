"""Workload profiles of `make bench`: what each simulated device sends, and what it is compared with."""

from __future__ import annotations

from dataclasses import dataclass

METRICS_PER_TYPE = {"power_meter_dc": 3, "power_meter_ac": 6}  # simulator/values.py METRICS


@dataclass(frozen=True)
class Profile:
    """One device shape: types sent, samples of each metric per datagram, seconds between datagrams."""

    name: str
    type_mix: dict[str, int]
    samples: int
    send_interval: float
    description: str
    reference: str = ""  # a published figure to set the result beside, with its hardware

    def data_points(self, samples: int | None = None) -> float:
        """Mean data points (metric readings) per datagram over the type mix."""
        weights = sum(self.type_mix.values())
        per_sample = sum(METRICS_PER_TYPE[t] * w for t, w in self.type_mix.items()) / weights
        return per_sample * (samples or self.samples)

    def sim_type_mix(self) -> str:
        """The simulator's --type-mix value."""
        return ",".join(f"{t}:{w}" for t, w in self.type_mix.items())


PROFILES = {
    "default": Profile(
        "default", {"power_meter_dc": 1, "power_meter_ac": 1}, samples=10, send_interval=10,
        description="the protocol's device profile: DC/AC meters 1:1, a datagram every 10 s with 10 samples of "
                    "each metric (30 or 60 data points)"),
    "thingsboard": Profile(
        "thingsboard", {"power_meter_dc": 1}, samples=1, send_interval=1,
        description="ThingsBoard-shaped: DC meters only, one sample of 3 metrics per message (3 data points), "
                    "a message every second per device",
        reference="ThingsBoard's published smart-meter figure: 5,000 msg/s (15,000 data points/s) on a 2-vCPU AWS "
                  "m6a.large with Kafka and PostgreSQL (as quoted in issue 10); different hardware and setup"),
}
