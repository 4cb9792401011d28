"""The sequencer's domain service on its ports: a batch that fails half-way leaves no marks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collector.sequencing.service import Sequencer
from iothub.contract import BridgedMessage


class Store:
    """An in-memory SeqStore (the PostgreSQL one is covered by test_seq_state)."""

    def __init__(self):
        self.rows = {}

    def load(self, device_id):
        return self.rows.get(device_id)

    def load_many(self, device_ids):
        return {d: self.rows[d] for d in device_ids if d in self.rows}

    def save(self, rows):
        self.rows.update({r.device_id: r for r in rows})


class Publisher:
    """Records publishes and confirms them at once; raises on the message whose seq is in `fail_on`."""

    def __init__(self, fail_on=()):
        self.fail_on = set(fail_on)
        self.published = []

    def publish(self, exchange, routing_key, body, on_confirm, **_):
        if b'"seq":' in body and any(f'"seq":{s},'.encode() in body for s in self.fail_on):
            self.fail_on.clear()  # fails once, like a bug hit by one delivery
            raise RuntimeError("encode bug")
        self.published.append((exchange, routing_key, body))
        on_confirm(True)


class Observer:
    def judged(self, source, verdict):
        pass


def _message(seq: int) -> BridgedMessage:
    ts = datetime.now(UTC).isoformat()
    return BridgedMessage("dev-1", "t", None, "telemetry", ts, seq, "mqtt", ts, False,
                          {"v": 2, "device_id": "dev-1", "msg_type": "telemetry", "seq": seq, "ts": ts,
                           "measurements": []})


def test_a_batch_that_fails_half_way_is_judged_afresh_when_it_comes_back():
    publisher = Publisher(fail_on={2})
    sequencer = Sequencer(publisher, Store(), Observer(), partitions=8, reboot_uptime_s=120)
    batch = [_message(1), _message(2), _message(3)]
    with pytest.raises(RuntimeError):
        sequencer.sequence(batch)
    published_before = len(publisher.published)
    done = sequencer.sequence(batch)  # the requeued batch, delivered again
    assert done.wait(1)
    sequencer.commit()
    telemetry = [p for p in publisher.published[published_before:] if p[0] == "iot.telemetry"]
    assert len(telemetry) == 3, "messages judged as duplicates of a batch that never landed would be lost"
    assert sequencer.state("dev-1").last_seq == 3 and sequencer.state("dev-1").duplicates_total == 0
