"""SequenceTracker rules as a table: duplicates, gaps, reboots, wrap-around, late fills."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from collector.sequencing.seq import DeviceSeq, SequenceTracker, Status

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


def test_a_forgotten_device_is_read_again_so_its_unsaved_seq_is_accepted_once_more_and_not_flushed():
    stored = {}
    tracker = SequenceTracker(stored.get)
    tracker.observe("d", 1)
    tracker.observe("e", 1)
    tracker.forget(["d"])  # the batch that held d's seq 1 did not land: its state is read again, unchanged
    assert [r.device_id for r in tracker.take_dirty(["d", "e"])] == ["e"]
    assert tracker.observe("d", 1).status is Status.FIRST
    assert tracker.observe("d", 1).status is Status.DUPLICATE
    assert [r.device_id for r in tracker.take_dirty(["d", "e"])] == ["d"]


def test_window_survives_64_bits_and_a_long_jump_clears_it():
    tracker = SequenceTracker(lambda device_id: None)
    for seq in range(0, 70):
        tracker.observe("d", seq)
    assert tracker.state("d").window_bits == 2**64 - 1
    assert tracker.observe("d", 5).status is Status.DUPLICATE  # 64 behind: beyond the window, stale
    tracker.observe("d", 1000)
    assert tracker.state("d").window_bits == 0
    assert tracker.observe("d", 999).status is Status.LATE


def test_primed_tracker_never_queries_per_device():
    from collector.sequencing.seq import DeviceSeq, SequenceTracker, Status

    def loader(device_id):
        raise AssertionError(f"per-device query for {device_id}")

    tracker = SequenceTracker(loader)
    assert tracker.unknown(["known", "brand-new", "known"]) == ["known", "brand-new"]
    tracker.prime(["known", "brand-new"], {"known": DeviceSeq("known", 3, 41)})
    assert tracker.unknown(["known", "brand-new"]) == []
    assert tracker.observe("known", 42).status == Status.NEXT
    assert tracker.observe("known", 42).status == Status.DUPLICATE
    assert tracker.state("known").epoch == 3
    assert tracker.observe("brand-new", 0).status == Status.FIRST


def _boot(tracker, device_id, seqs, start_s, *, prefix=1):
    """Datagrams every 10 s from `start_s`, content varying with the boot; returns their verdicts."""
    out = []
    for seq in seqs:
        ts = T0 + timedelta(seconds=start_s + 10 * seq)
        print_ = (prefix * 1_000_003 + seq) % 2**32 or 1
        out.append((seq, ts, print_, tracker.observe(device_id, seq, ts=ts, print_=print_)))
    return out


@pytest.mark.parametrize("last", [0, 1, 2, 29, 63, 64, 65, 1000, 2**31 - 5, 2**31 + 5, 2**32 - 2**16 - 1])
def test_power_cycle_without_hello_starts_one_new_epoch_and_loses_nothing(last):
    tracker = SequenceTracker(lambda device_id: None)
    first = list(range(max(0, last - 70), last + 1))
    before = _boot(tracker, "d", first, 0)
    assert [v.status for *_, v in before[1:]] == [Status.NEXT] * (len(first) - 1)
    after = _boot(tracker, "d", range(0, 19), 10 * (last + 1) + 3600, prefix=2)  # powered on an hour later
    statuses = [v.status for *_, v in after]
    assert statuses[0] is Status.REBOOT
    assert statuses[1:] == [Status.NEXT] * 18  # stored, every one, in the new epoch
    assert {v.epoch for *_, v in after} == {1}
    assert tracker.state("d").reboots_total == 1 and tracker.state("d").duplicates_total == 0


@pytest.mark.parametrize("last", [0, 1, 2, 63, 64])
def test_power_cycle_within_the_same_second_is_told_by_content(last):
    tracker = SequenceTracker(lambda device_id: None)
    sent = _boot(tracker, "d", range(0, last + 1), 0)
    same_second = sent[-1][1]  # whole-second timestamps: the new boot's first message shares the last one's ts
    assert tracker.observe("d", 0, ts=same_second, print_=424242).status is Status.REBOOT
    assert tracker.observe("d", 1, ts=same_second + timedelta(seconds=10), print_=424243).status is Status.NEXT


@pytest.mark.parametrize("lag", [3, 64, 65, 200])
def test_a_lagging_brokers_copies_of_an_earlier_boot_are_dropped_after_the_reboot(lag):
    tracker = SequenceTracker(lambda device_id: None)
    old = _boot(tracker, "d", range(0, 300), 0)  # broker A delivered the whole first boot
    new = _boot(tracker, "d", range(0, 5), 10 * 300 + 3600, prefix=2)  # ... and the power cycle
    assert [v.status for *_, v in new] == [Status.REBOOT] + [Status.NEXT] * 4
    # Broker B catches up: copies of the first boot, some above the new epoch's seqs, some in its window.
    late = [tracker.observe("d", seq, ts=ts, print_=p).status for seq, ts, p, _ in old[-lag:]]
    assert late == [Status.DUPLICATE] * lag
    assert tracker.observe("d", 5, ts=new[-1][1] + timedelta(seconds=10), print_=9).status is Status.NEXT
    assert tracker.state("d").epoch == 1


def test_far_below_without_a_time_is_a_reboot_only_near_zero_and_with_a_time_only_when_later():
    tracker = SequenceTracker(lambda device_id: None)
    tracker.observe("d", 5000, ts=T0, print_=1)
    assert tracker.observe("d", 3, ts=T0 - timedelta(seconds=5), print_=2).status is Status.DUPLICATE  # a copy
    assert tracker.observe("d", 3, ts=T0 + timedelta(seconds=5), print_=2).status is Status.REBOOT


def test_a_forgotten_device_accepts_the_message_whose_batch_did_not_land():
    tracker = SequenceTracker(lambda device_id: None)
    for seq in range(0, 4):
        tracker.observe("d", seq, ts=T0 + timedelta(seconds=seq), print_=10 + seq)
    saved = tracker.take_dirty(["d"])[0]  # committed with seqs 0-3
    reloaded = SequenceTracker(lambda device_id: copy.deepcopy(saved))  # a store returns a fresh row each time
    assert reloaded.observe("d", 4, ts=T0 + timedelta(seconds=4), print_=14).status is Status.NEXT
    reloaded.forget(["d"])  # seq 4's batch did not land: the store still says 0-3
    assert reloaded.observe("d", 4, ts=T0 + timedelta(seconds=4), print_=14).status is Status.NEXT


@pytest.mark.parametrize("last", [1, 2, 29, 63, 64, 65, 1000])
def test_a_true_redelivery_is_still_dropped_at_every_distance(last):
    tracker = SequenceTracker(lambda device_id: None)
    sent = _boot(tracker, "d", range(0, last + 1), 0)
    for seq, ts, print_, _ in sent[-65:]:  # what a broker can still hold: the window and the last seq
        assert tracker.observe("d", seq, ts=ts, print_=print_).status is Status.DUPLICATE, seq
    assert tracker.state("d").epoch == 0


def test_copies_from_two_brokers_interleaved_store_once_and_gaps_stay_exact():
    tracker = SequenceTracker(lambda device_id: None)
    sent = [(seq, T0 + timedelta(seconds=10 * seq), 7000 + seq) for seq in (0, 1, 2, 3, 6, 7)]
    a = [tracker.observe("d", s, ts=t, print_=p).status for s, t, p in sent]
    b = [tracker.observe("d", s, ts=t, print_=p).status for s, t, p in reversed(sent)]
    assert a == [Status.FIRST, Status.NEXT, Status.NEXT, Status.NEXT, Status.GAP, Status.NEXT]
    assert b == [Status.DUPLICATE] * 6
    assert tracker.state("d").missing_total == 2


def test_late_fill_is_accepted_once_and_a_new_boot_at_a_missing_seq_is_a_reboot():
    tracker = SequenceTracker(lambda device_id: None)
    for seq in (0, 1, 4):
        tracker.observe("d", seq, ts=T0 + timedelta(seconds=seq), print_=100 + seq)
    assert tracker.observe("d", 2, ts=T0 + timedelta(seconds=2), print_=102).status is Status.LATE
    assert tracker.observe("d", 2, ts=T0 + timedelta(seconds=2), print_=102).status is Status.DUPLICATE
    assert tracker.observe("d", 3, ts=T0 + timedelta(seconds=60), print_=9).status is Status.REBOOT


def test_wrap_round_with_a_small_gap_is_a_wrap_and_a_restart_from_the_middle_is_a_reboot():
    tracker = SequenceTracker(lambda device_id: None)
    tracker.observe("d", TOP - 3, ts=T0, print_=1)
    assert tracker.observe("d", 2, ts=T0 + timedelta(seconds=1), print_=2).status is Status.GAP
    other = SequenceTracker(lambda device_id: None)
    other.observe("e", 3_000_000_000, ts=T0, print_=1)
    assert other.observe("e", 0, ts=T0 + timedelta(seconds=1), print_=2).status is Status.REBOOT


def test_a_restart_just_below_the_wrap_reads_as_a_wrap_and_still_loses_nothing():
    tracker = SequenceTracker(lambda device_id: None)
    _boot(tracker, "d", range(TOP - 5, TOP), 0)
    after = [v.status for *_, v in _boot(tracker, "d", range(0, 5), 10 * TOP + 3600, prefix=2)]
    assert after == [Status.GAP] + [Status.NEXT] * 4  # ambiguous without a hello (docs/protocol.md); all stored


def test_replacement_unit_under_the_same_id_starts_a_fresh_history_with_a_higher_epoch():
    tracker = SequenceTracker(lambda device_id: None)
    for seq in range(0, 30):
        tracker.observe("d", seq, ts=T0 + timedelta(seconds=seq), print_=seq + 1, registration="unit-a")
    tracker.observe("d", 30, ts=T0 + timedelta(seconds=30), print_=5, registration="unit-a")
    old = tracker.state("d")
    # The new unit sends the old one's seqs and content, later: only the registration says it is not a reboot.
    got = [tracker.observe("d", seq, ts=T0 + timedelta(seconds=100 + seq), print_=seq + 1, registration="unit-b")
           for seq in range(0, 6)]
    assert [v.status for v in got] == [Status.RENEWED] + [Status.NEXT] * 5
    assert {v.epoch for v in got} == {old.epoch + 1}
    state = tracker.state("d")
    assert (state.registration, state.duplicates_total, state.reboots_total) == ("unit-b", 0, 0)


def test_a_state_stored_before_registrations_adopts_the_first_one_it_sees():
    tracker = SequenceTracker(lambda device_id: DeviceSeq("d", 2, 10))
    assert tracker.observe("d", 11, registration="unit-a").status is Status.NEXT
    assert tracker.state("d").registration == "unit-a"
    assert tracker.observe("d", 11, registration="unit-a").status is Status.DUPLICATE
