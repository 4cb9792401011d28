"""Sequence state is flushed to device_seq_tracking in batches and reloaded by the next collector."""

from __future__ import annotations

from iothub import topology
from tests.collector.conftest import sample, telemetry
from tests.support.poll import wait_for


def _row(db, dev):
    with db.transaction() as cur:
        cur.execute("""SELECT epoch, last_seq, window_bits, gaps_total, missing_total, duplicates_total
                       FROM device_seq_tracking WHERE device_id = %s""", (dev,))
        return cur.fetchone()


def test_state_is_flushed_while_running_and_reloaded_after_restart(start_edge, device, make_device, tap, db):
    edge = start_edge()
    dev = make_device()
    out = tap(topology.TELEMETRY_EXCHANGE, [f"*.*.{dev}.*"])
    sent = {seq: telemetry(dev, seq) for seq in range(1, 8)}  # as the device made them; sent below out of order
    for seq in (1, 2, 3, 6, 3):
        device.send(dev, sent[seq])
    # Committed with each batch, before its ack, not by a stop.
    row = wait_for(lambda: (r := _row(db, dev)) and r[1] == 6 and r[5] == 1 and r, what="flushed row")
    assert row[0] == 0 and row[3:] == (1, 2, 1)
    assert row[2] == 0b11100  # bit i = seq 5-i: 5 and 4 missing, 3, 2, 1 seen
    edge.stop()
    restarted = start_edge(client_id=edge.settings.mqtt_client_id + "-b")
    dups = sample("iothub_collector_duplicates_total", source="mqtt")
    for seq in (2, 5, 7):
        device.send(dev, sent[seq])
    wait_for(lambda: len(out.drain()) == 6, what="late 5 and next 7 after the restart")
    assert [b["seq"] for b in out.bodies()][-2:] == [5, 7]
    wait_for(lambda: sample("iothub_collector_duplicates_total", source="mqtt") - dups == 1, what="seq 2 duplicate")
    restarted.stop()
    assert _row(db, dev)[1] == 7


def test_window_bits_with_the_top_bit_set_round_trip_through_bigint(start_edge, device, make_device, db):
    edge = start_edge()
    dev = make_device()
    for seq in range(0, 66):
        device.send(dev, telemetry(dev, seq))
    wait_for(lambda: (r := _row(db, dev)) and r[1] == 65, what="row at 65")
    assert _row(db, dev)[2] == -1  # all 64 bits seen, stored as a signed bigint
    edge.stop()
    state = edge.seq_state(dev)  # the cached state equals what a fresh load returns
    from collector.sequencing.repository import PostgresSeqStore

    loaded = PostgresSeqStore(db).load(dev)
    assert (loaded.last_seq, loaded.window_bits) == (state.last_seq, state.window_bits) == (65, 2**64 - 1)
