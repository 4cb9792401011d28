"""SequenceTracker rules as a table: duplicates, gaps, reboots, wrap-around, late fills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.seq import DeviceSeq, SequenceTracker, Status

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TOP = 2**32 - 1


def hello(seq, uptime, at):
    """A hello `at` seconds after T0 with the given uptime."""
    return (seq, "hello", uptime, T0 + timedelta(seconds=at))


def tel(seq):
    """A telemetry message."""
    return (seq, "telemetry", None, None)


CASES = {
    "in order": (None, [tel(0), tel(1), tel(2)], ["first", "next", "next"]),
    "duplicate of last": (None, [tel(5), tel(6), tel(6)], ["first", "next", "duplicate"]),
    "duplicate inside window": (None, [tel(1), tel(2), tel(3), tel(2)], ["first", "next", "next", "duplicate"]),
    "gap": (None, [tel(1), tel(5)], ["first", "gap"]),
    "late fill then duplicate": (None, [tel(1), tel(4), tel(2), tel(3), tel(2)],
                                 ["first", "gap", "late", "late", "duplicate"]),
    "wrap-around is not a reboot": (None, [tel(TOP - 1), tel(TOP), tel(0), tel(1)],
                                    ["first", "next", "next", "next"]),
    "gap across wrap": (None, [tel(TOP - 1), tel(2)], ["first", "gap"]),
    "late fill across wrap": (None, [tel(TOP - 1), tel(1), tel(TOP), tel(0)], ["first", "gap", "late", "late"]),
    "reboot by hello": (None, [hello(0, 1, 0), tel(1), tel(2), hello(0, 2, 100), tel(1)],
                        ["first", "next", "next", "reboot", "next"]),
    "redelivered hello is a duplicate": (None, [hello(0, 1, 0), tel(1), hello(0, 1, 0)],
                                         ["first", "next", "duplicate"]),
    "periodic hello is not a reboot": (None, [hello(0, 1, 0), tel(1), hello(2, 60, 59)], ["first", "next", "next"]),
    "old-uptime hello at same seq is a duplicate": (None, [tel(7), hello(7, 5000, 10)], ["first", "duplicate"]),
    "reboot by far-below seq": (None, [tel(5000), tel(5001), tel(0), tel(1)], ["first", "next", "reboot", "next"]),
    "beyond window but not near zero is stale": (None, [tel(5000), tel(4900)], ["first", "duplicate"]),
    "stored state continues": (DeviceSeq("d", 3, 10, 0), [tel(11), tel(10)], ["next", "duplicate"]),
}


@pytest.mark.parametrize(("initial", "messages", "expected"), CASES.values(), ids=CASES.keys())
def test_sequence_rules(initial, messages, expected):
    tracker = SequenceTracker(lambda device_id: initial, reboot_uptime_s=120)
    got = [tracker.observe("d", seq, msg_type=kind, uptime_s=up, ts=ts).status.value
           for seq, kind, up, ts in messages]
    assert got == expected


def test_gap_reports_expected_and_missing_and_epochs_count_up():
    tracker = SequenceTracker(lambda device_id: None)
    tracker.observe("d", 1000)
    gap = tracker.observe("d", 1005)
    assert (gap.status, gap.expected, gap.missing, gap.epoch) == (Status.GAP, 1001, 4, 0)
    assert tracker.observe("d", 0).status is Status.REBOOT  # far behind and nearer 0: a restart
    assert tracker.observe("d", 1).epoch == 1
    state = tracker.state("d")
    assert (state.gaps_total, state.missing_total, state.reboots_total) == (1, 4, 1)


def test_released_seq_is_accepted_once_more_and_blocks_its_device_flush():
    tracker = SequenceTracker(lambda device_id: None)
    tracker.observe("d", 1)
    tracker.observe("e", 1)
    tracker.release("d", 0, 1, now=0.0)
    assert [r.device_id for r in tracker.take_dirty(now=1.0)] == ["e"]
    assert tracker.observe("d", 1).status is Status.RETRY
    assert tracker.observe("d", 1).status is Status.DUPLICATE
    assert [r.device_id for r in tracker.take_dirty(now=2.0)] == ["d"]


def test_window_survives_64_bits_and_a_long_jump_clears_it():
    tracker = SequenceTracker(lambda device_id: None)
    for seq in range(0, 70):
        tracker.observe("d", seq)
    assert tracker.state("d").window_bits == 2**64 - 1
    assert tracker.observe("d", 5).status is Status.DUPLICATE  # 64 behind: beyond the window, stale
    tracker.observe("d", 1000)
    assert tracker.state("d").window_bits == 0
    assert tracker.observe("d", 999).status is Status.LATE


def test_preloaded_tracker_never_queries_per_device():
    from collector.seq import DeviceSeq, SequenceTracker, Status

    def loader(device_id):
        raise AssertionError(f"per-device query for {device_id}")

    tracker = SequenceTracker(loader)
    tracker.preload({"known": DeviceSeq("known", 3, 41)})
    assert tracker.observe("known", 42).status == Status.NEXT
    assert tracker.observe("known", 42).status == Status.DUPLICATE
    assert tracker.state("known").epoch == 3
    assert tracker.observe("brand-new", 0).status == Status.FIRST
