"""Energy writer on PostgreSQL and RabbitMQ: hand-computed buckets after shuffles, duplicates, reboots and restarts."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

import pytest

from collector.metering import power
from iothub import topology
from tests.support.poll import wait_for

ENERGY = topology.ENERGY_QUEUE.name
BUCKET = 300


def _t0() -> datetime:
    """A bucket-aligned instant a day ago (energy has no retention, any past time works)."""
    now = datetime.now(UTC) - timedelta(days=1)
    return now.replace(minute=0, second=0, microsecond=0)


def _dc(t0, seconds, volts=750.0, amps=400.0):
    items = []
    for s in seconds:
        ts = (t0 + timedelta(seconds=s)).isoformat()
        items += [{"ts": ts, "type": "voltage_dc", "val": volts, "unit": "V"},
                  {"ts": ts, "type": "current_dc", "val": amps(s) if callable(amps) else amps, "unit": "A"}]
    return {"measurements": items}


def _datagrams(kit, device, t0, seconds, *, epoch=1, first_seq=1, **kw):
    chunks = [seconds[i:i + 10] for i in range(0, len(seconds), 10)]
    return [kit.message(device, "telemetry", _dc(t0, chunk, **kw), ts=t0 + timedelta(seconds=chunk[-1]),
                        seq=first_seq + i, epoch=epoch) for i, chunk in enumerate(chunks)]


def _buckets(db, device):
    with db.transaction() as cur:
        cur.execute("SELECT bucket, consumed_wh, regenerated_wh, apparent_vah, reactive_varh, covered_s, samples "
                    "FROM energy_buckets WHERE device_id = %s ORDER BY bucket", (device,))
        return {row[0]: row[1:] for row in cur.fetchall()}


def _samples(db, device):
    with db.transaction() as cur:
        cur.execute("SELECT count(*) FROM energy_samples WHERE device_id = %s", (device,))
        return cur.fetchone()[0]


def _settings(kit):
    return kit.settings(WRITERS="energy", METERING_BUCKET_S=BUCKET, METERING_SAMPLE_INTERVAL_S=1,
                        METERING_GAP_FACTOR=3)


def test_constant_load_shuffled_duplicated_and_across_a_restart(writer_kit):
    kit, db = writer_kit, writer_kit.db
    kit.purge(ENERGY)
    device, t0 = f"en-{kit.uid}", _t0()
    msgs = _datagrams(kit, device, t0, list(range(601)))  # 300 kW on 0..600 s
    random.Random(13).shuffle(msgs)
    handle = kit.start("energy", _settings(kit))
    kit.send(*msgs[:30], *msgs[:5])  # redeliveries of the first five
    wait_for(lambda: _samples(db, device) >= sum(len(m.body["measurements"]) // 2 for m in msgs[:30]),
             timeout=20, what="first half of the samples")
    handle.stop()
    handle.join(15)
    kit.start("energy", _settings(kit))  # a restart: what is stored carries on
    kit.send(*msgs[30:], *msgs[10:20])
    wait_for(lambda: _samples(db, device) == 601, timeout=20, what="every sample")
    expected = {t0: (25_000.0, 300.0, 300), t0 + timedelta(seconds=300): (25_000.0, 300.0, 300),
                t0 + timedelta(seconds=600): (0.0, 0.0, 1)}
    got = wait_for(lambda: (b := _buckets(db, device)) and {k: (round(v[0], 6), v[4], v[5]) for k, v in b.items()}
                   == expected and b, timeout=20, what="hand-computed buckets")
    assert all(v[1] == v[2] == v[3] == 0 for v in got.values())  # DC: no regeneration, no apparent or reactive
    with db.transaction() as cur:  # the hourly sums follow the buckets, shuffles and restarts included
        cur.execute("SELECT hour, consumed_wh, covered_s, samples FROM energy_hours WHERE device_id = %s", (device,))
        assert cur.fetchall() == [(t0, pytest.approx(50_000.0), 600.0, 601)]


def test_reboot_mid_interval_with_resent_samples_and_a_gap(writer_kit):
    kit, db = writer_kit, writer_kit.db
    kit.purge(ENERGY)
    device, t0 = f"rb-{kit.uid}", _t0()
    kit.start("energy", _settings(kit))
    before = _datagrams(kit, device, t0, list(range(0, 100)), epoch=1, first_seq=40)
    # Power-cycled at 100 s: back at 130 s in a new epoch whose seq starts at 0 again; it first re-sends its last
    # buffered samples (90..99) under a new seq: same instants and values, so they count once.
    resent = _datagrams(kit, device, t0, list(range(90, 100)), epoch=2, first_seq=0)
    after = _datagrams(kit, device, t0, list(range(130, 200)), epoch=2, first_seq=1)
    kit.send(*before, *resent, *after)
    wait_for(lambda: _samples(db, device) == 170, timeout=20, what="every sample")
    # 99 s + 69 s integrated at 300 kW; the 31 s from 99 to 130 s is a gap (over 3 s), not energy.
    covered = 99 + 69
    got = wait_for(lambda: (b := _buckets(db, device).get(t0)) and b[4] == covered and b, timeout=20,
                   what="bucket with the reboot")
    assert got[0] == pytest.approx(300e3 * covered / 3600)
    assert got[5] == 170


def test_regeneration_and_ac_values_derived_by_ingest(writer_kit):
    kit, db = writer_kit, writer_kit.db
    kit.purge(ENERGY)
    t0 = _t0()
    dc, ac = f"rg-{kit.uid}", f"ac-{kit.uid}"
    kit.start("energy", _settings(kit))
    # DC: +1000 W for 10 s, crossing to -500 W between 10 and 11 s (zero at 10 2/3 s), -500 W until 20 s.
    regen = _datagrams(kit, dc, t0, list(range(21)), volts=100.0, amps=lambda s: 10.0 if s <= 10 else -5.0)
    items = []
    for s in range(301):  # AC 25 kV x 100 A x PF 0.8 for 300 s
        ts = (t0 + timedelta(seconds=s)).isoformat()
        items += [{"ts": ts, "type": "voltage_ac", "val": 25000, "unit": "V"},
                  {"ts": ts, "type": "current_ac", "val": 100, "unit": "A"}, {"ts": ts, "type": "pf", "val": 0.8}]
    body = {"measurements": items}
    msg = kit.message(ac, "telemetry", body, ts=t0 + timedelta(seconds=300), seq=1, device_type="power_meter_ac")
    # As the ingest edge publishes it with METERING_DERIVE on.
    msg = dataclasses.replace(msg, derived=power.derive(msg.body))
    kit.send(*regen, msg)
    got = wait_for(lambda: (b := _buckets(db, dc).get(t0)) and b[5] == 21 and b, timeout=20, what="DC bucket")
    assert got[0] == pytest.approx((10 * 1000 + 1000 / 2 * 2 / 3) / 3600)
    assert got[1] == pytest.approx((9 * 500 + 500 / 2 * 1 / 3) / 3600)
    got = wait_for(lambda: (b := _buckets(db, ac).get(t0)) and b[5] == 300 and b, timeout=20, what="AC bucket")
    assert got[:5] == (pytest.approx(2e6 / 12), 0.0, pytest.approx(2.5e6 / 12), pytest.approx(1.5e6 / 12), 300.0)


def test_devices_sharing_batches_keep_their_own_buckets_and_hours(writer_kit):
    """The writer sums a whole batch in one statement per table: interleaved devices must not mix."""
    kit, db = writer_kit, writer_kit.db
    kit.purge(ENERGY)
    t0 = _t0()
    loads = {f"en-a-{kit.uid}": 400.0, f"en-b-{kit.uid}": 200.0, f"en-c-{kit.uid}": 100.0}  # A at 750 V: 300/150/75 kW
    per_device = {d: _datagrams(kit, d, t0, list(range(601)), amps=a) for d, a in loads.items()}
    interleaved = [m for group in zip(*per_device.values(), strict=True) for m in group]
    kit.start("energy", _settings(kit))
    kit.send(*interleaved)
    for device, amps in loads.items():
        wh = 750.0 * amps * 300 / 3600
        expected = {t0: (round(wh, 6), 300.0, 300), t0 + timedelta(seconds=300): (round(wh, 6), 300.0, 300),
                    t0 + timedelta(seconds=600): (0.0, 0.0, 1)}
        wait_for(lambda d=device, e=expected: {k: (round(v[0], 6), v[4], v[5]) for k, v in _buckets(db, d).items()}
                 == e, timeout=30, what=f"hand-computed buckets of {device}")
        with db.transaction() as cur:
            cur.execute("SELECT hour, consumed_wh, samples FROM energy_hours WHERE device_id = %s", (device,))
            assert cur.fetchall() == [(t0, pytest.approx(2 * wh), 601)]
