"""Energy test data through the collector's own energy writer (real integration code on the test database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.writers.energy import EnergyWriter
from collector.writers.energy_postgres import PostgresEnergyStore
from iothub.contract.ingest import IngestMessage, message_id

BUCKET_S, MAX_GAP_S = 300, 3.0


@dataclass(frozen=True)
class Delivery:
    """What a writer reads from a broker delivery."""

    body: bytes
    headers: dict
    message_id: str | None


def hour_ago(hours: int) -> datetime:
    """A whole UTC hour `hours` before the current one."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)


def dc_samples(db, device_id: str, device_type: str, t0: datetime, seconds, *, volts: float, amps: float) -> None:
    """DC meter samples at t0 + each second, 10 per datagram, integrated by the collector's EnergyWriter."""
    writer = EnergyWriter(PostgresEnergyStore(db, bucket_s=BUCKET_S), bucket_s=BUCKET_S, max_gap=MAX_GAP_S)
    seconds = list(seconds)
    batch = []
    for seq, i in enumerate(range(0, len(seconds), 10)):
        items = []
        for s in seconds[i:i + 10]:
            ts = (t0 + timedelta(seconds=s)).isoformat()
            items += [{"ts": ts, "type": "voltage_dc", "val": volts, "unit": "V"},
                      {"ts": ts, "type": "current_dc", "val": amps, "unit": "A"}]
        msg = IngestMessage(message_id(device_id, 1, seq), device_id, device_type, "telemetry", items[-1]["ts"], seq,
                            1, datetime.now(UTC).isoformat(), "mqtt", {"measurements": items})
        batch.append(Delivery(msg.encode(), {}, msg.msg_id))
    for i in range(0, len(batch), 100):
        assert writer(batch[i:i + 100]) == {}
