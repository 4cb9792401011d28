"""Seen notices: duplicates and dead-lettered messages of a registered device still say it is alive."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from collector.writers.state import collapse, split_seen
from iothub import topology
from iothub.contract import SeenNotice
from tests.collector.conftest import telemetry
from tests.support.poll import wait_for


@dataclass
class _Delivery:
    body: bytes
    headers: dict
    message_id: str | None = None


def test_duplicates_and_rejections_of_a_known_device_publish_seen_notices(edge, device, make_device, tap,
                                                                          device_type):
    dev = make_device()
    notices = tap(topology.NOTICES_EXCHANGE, [f"seen.*.{dev}.*"])
    first = telemetry(dev, 1)
    device.send(dev, first)
    device.send(dev, first)  # the same message again: dropped, but heard
    got = SeenNotice.decode(wait_for(notices.drain, what="seen notice for the duplicate")[0][1])
    assert (got.device_id, got.device_type, got.why) == (dev, device_type, "duplicate")
    assert wait_for(lambda: not edge.bridge.pending_acks, what="acked")
    # The edge notes rejections, the sequencer duplicates: neither holds back the other's notice.
    device.send(dev, {**telemetry(dev, 2), "seq": "x"})  # dead-lettered
    wait_for(lambda: [n for _, b in notices.drain() if (n := SeenNotice.decode(b)).why == "rejected"],
             what="seen notice for the rejection")


def test_unknown_senders_publish_no_seen_notice(edge, device, tap, uid):
    notices = tap(topology.NOTICES_EXCHANGE, ["seen.#"])
    dead = tap(topology.DEAD_LETTER_EXCHANGE, [""])
    ghost = f"ghost-{uid}"
    device.send(ghost, telemetry(ghost, 1))
    wait_for(lambda: [p for p, _ in dead.drain() if ghost in p.headers.get(topology.DL_DETAIL, "")],
             what="dead letter of the unknown device")
    assert not [b for _, b in notices.drain() if ghost.encode() in b]


def test_state_writer_marks_a_seen_device_online_and_keeps_messages_apart():
    notice = SeenNotice("d1", "t1", "duplicate", "2026-12-01T10:00:00+00:00").encode()
    foreign = orjson.dumps({"kind": "seen", "device_id": "d2"})  # not a complete notice: decoded as a message
    messages, indexes, seen = split_seen([_Delivery(notice, {}), _Delivery(foreign, {})])
    assert list(seen) == [0] and indexes == [1] and messages[0].body == foreign
    batch, rejected = collapse([], list(seen.values()))
    assert rejected == {}
    (state,) = batch.devices
    assert (state.device_id, state.status, state.last_seen.isoformat()) == ("d1", "online", "2026-12-01T10:00:00+00:00")
