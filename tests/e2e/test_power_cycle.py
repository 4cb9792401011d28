"""Power cycles at every seq, with and without a hello, and a replacement unit: nothing lost, nothing doubled.

A ledger over the real stack (Mosquitto -> collector -> RabbitMQ -> series and archive), keyed by
(device_id, boot, seq): the epoch the platform assigns must equal the boot the device was in.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import paho.mqtt.client as mqtt
import pytest

from iothub.contract.topics import device_topic
from tests.e2e.test_pipeline import _register
from tests.support import mqtt as test_mqtt
from tests.support.archive import ArchiveBucket
from tests.support.poll import wait_for

pytestmark = pytest.mark.slow
BOOT_GAP = timedelta(hours=1)  # the meters are powered on again an hour later, as in issue 14's measurement


class Meter:
    """A spec meter's messages: seq from 0 (or `start`) per boot, current timestamps, content of its own."""

    def __init__(self, client: mqtt.Client, device_id: str, *, hello: bool):
        self.client, self.device_id, self.hello = client, device_id, hello
        self.clock = datetime.now(UTC) - 2 * BOOT_GAP
        self.sent: list[bytes] = []
        self.ledger: list[tuple[str, int, int]] = []  # (device_id, boot, seq) of every accepted telemetry

    def boot(self, boot: int, seqs: range) -> None:
        """Power on and publish `seqs`; a hello first (at the first seq) when this meter sends hellos."""
        self.clock += BOOT_GAP
        seqs = list(seqs)
        if self.hello:
            self._publish("hello", {"seq": seqs.pop(0), "msg_type": "hello", "fw_version": "2.1.0", "uptime_s": 2,
                                    "broker_connections": 1, "buf_usage_pct": 0})
        for seq in seqs:
            self.clock += timedelta(seconds=10)
            ts = _iso(self.clock)
            self._publish("telemetry", {"seq": seq, "msg_type": "telemetry", "measurements": [
                {"ts": ts, "type": "voltage_dc", "val": 700 + boot * 100 + seq % 50, "unit": "V"}]})
            self.ledger.append((self.device_id, boot, seq))

    def redeliver(self, count: int) -> None:
        """Publish the last `count` messages again, byte for byte, as a broker redelivers them."""
        for raw in self.sent[-count:]:
            self.client.publish(device_topic(self.device_id, orjson.loads(raw)["msg_type"]), raw,
                                qos=1).wait_for_publish(10)

    def _publish(self, suffix: str, fields: dict) -> None:
        raw = orjson.dumps({"v": 2, "device_id": self.device_id, "ts": _iso(self.clock), **fields})
        self.client.publish(device_topic(self.device_id, suffix), raw, qos=1).wait_for_publish(10)
        self.sent.append(raw)


def _iso(at: datetime) -> str:
    return at.replace(microsecond=0).isoformat().replace("+00:00", "Z")  # whole seconds, as the spec's meters


def _series(db, devices) -> list[tuple[str, int, int]]:
    with db.transaction() as cur:
        cur.execute("SELECT device_id, epoch, seq FROM telemetry WHERE device_id = ANY(%s)", (devices,))
        return [tuple(r) for r in cur.fetchall()]


def _client(port: int, uid: str) -> mqtt.Client:
    client = test_mqtt.client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"meters-{uid}", clean_session=False)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


# last seq of the first boot -> the seqs it publishes (a "far beyond" boot starts high, as after a long run)
CYCLES = {1: range(0, 2), 2: range(0, 3), 29: range(0, 30), 63: range(0, 64), 64: range(0, 65), 65: range(0, 66),
          100_000: range(99_990, 100_001), 3_000_000_000: range(2_999_999_990, 3_000_000_001)}


def test_power_cycles_at_every_seq_and_a_replacement_unit_store_each_reading_once(platform, db, mqtt_broker,
                                                                                platform_env, uid):
    client = _client(mqtt_broker.port, uid)
    meters = []
    try:
        for last, seqs in CYCLES.items():
            for hello in (False, True):
                meter = Meter(client, f"pc-{uid}-{last}-{'h' if hello else 'n'}", hello=hello)
                _register(db, meter.device_id)
                meter.boot(0, seqs)
                meters.append(meter)
        devices = [m.device_id for m in meters]
        wait_for(lambda: len(_series(db, devices)) >= sum(len(m.ledger) for m in meters), timeout=60,
                 what="first boots stored")
        for meter in meters:
            meter.redeliver(3)  # a true redelivery: dropped
            meter.boot(1, range(0, 19))  # powered on again, seq from 0 with current timestamps
            meter.redeliver(2)
        # A replacement unit under the same id: the old one is deleted and the new one registered.
        replaced = Meter(client, f"pc-{uid}-replaced", hello=False)
        _register(db, replaced.device_id)
        replaced.boot(0, range(0, 12))
        wait_for(lambda: len(_series(db, [replaced.device_id])) == 12, timeout=30, what="old unit stored")
        with db.transaction() as cur:
            cur.execute("DELETE FROM devices WHERE device_id = %s", (replaced.device_id,))
        _register(db, replaced.device_id)  # the old unit's readings stay stored, under its epoch 0
        replaced.boot(1, range(0, 6))  # the new unit, from seq 0; its epoch is the next one
        meters.append(replaced)
        devices.append(replaced.device_id)
    finally:
        client.loop_stop()
        client.disconnect()
    expected = Counter(key for m in meters for key in m.ledger)

    def units(keys) -> Counter:
        # The new unit's first message may beat the registration notice to the collector: it is then a reboot of the
        # old unit's history, and the notice starts yet another epoch. Either way it is above the old unit's epoch.
        return Counter((d, min(e, 1) if d == replaced.device_id else e, s) for d, e, s in keys)

    wait_for(lambda: units(_series(db, devices)) == expected, timeout=90, what="every reading stored once")
    wait_for(lambda: units(_archive_keys(db, platform_env, devices)) == expected, timeout=90,
             what="archive holds every reading once")
    with db.transaction() as cur:
        cur.execute("SELECT device_id, epoch, reboots_total FROM device_seq_tracking WHERE device_id = ANY(%s)",
                    (devices,))
        tracked = {d: (e, r) for d, e, r in cur.fetchall()}
    assert all(tracked[m.device_id] == (1, 1) for m in meters[:-1]), tracked  # exactly one new epoch each
    assert tracked[replaced.device_id][0] >= 1  # a history of its own, above the old unit's epochs


def _archive_keys(db, env, devices) -> list[tuple[str, int, int]]:
    port = int(env["S3_ENDPOINT"].rsplit(":", 1)[1])
    return [(x["device_id"], x["epoch"], x["seq"]) for x in ArchiveBucket(port, env["S3_BUCKET"]).visible(db, devices)
            if x["msg_type"] == "telemetry"]
